/**
 * `hub.wpks`: the work-package service. It validates requests, runs the
 * engine on a sweep timer and on node changes, publishes triggers and cancel
 * commands, and keeps every WPK in `wpks.json` (a hub restart loses nothing).
 */
import { systemClock, type Clock, type TimerHandle } from '../../lib/clock.js';
import { errorFields, type Logger } from '../../lib/log.js';
import type { Topics } from '../../lib/topics.js';
import type { CancelCommand, ExecutionUpdate, HttpWpkRequest, WpkTrigger } from '../../lib/wire.js';
import { validators } from '../../schemas/index.js';
import type { Publisher } from '../context.js';
import type { HubObservers } from '../observe.js';
import type { HubCounters } from '../counters.js';
import { defaultFlusherOptions, Flusher, type FlusherOptions } from '../flusher.js';
import type { Refusals } from '../refusals.js';
import type { Registry } from '../registry.js';
import { WpkEngine, type Change, type EngineOptions, type Signals } from './engine.js';
import { DEFAULT_WPK, isFinalWpk, newWpk, type WpkDefaults } from './model.js';
import type { StoreHealth } from '../store/health.js';
import type { Store } from '../store/types.js';
import { changed } from './store.js';
import { countOpenExecutions, countWpksByState, listWpks } from './list.js';
import { WpkRequestError, type ExecutionRecordState, type WorkPackages, type WpkListFilter, type WpkRecord, type WpkState } from './types.js';

export interface WpkOptions extends Partial<EngineOptions> {
  /** How often timeouts, lost nodes and deadlines are checked (default 250 ms). */
  sweepIntervalMs?: number;
  /** Finished WPKs are forgotten after this long (default 7 days)... */
  retentionMs?: number;
  /** ...or when more than this many are finished, oldest first (default 10,000). */
  maxFinished?: number;
  /** Defaults of requests that do not say (timeout, deadline, attempts). */
  defaults?: Partial<WpkDefaults>;
  flush?: Partial<Omit<FlusherOptions, 'onError'>>;
  /**
   * Publish a trigger only once its attempt is stored: a hub killed between
   * the two cannot make a successor (or itself, restarted) dispatch that work
   * again. It costs each trigger a store write: 1-3 ms on PostgreSQL, but a
   * rewrite of the whole wpks.json with its fsync on files (dispatch p50
   * 0.65 ms -> 10 ms in bench dispatch-latency). So the hub turns it on for
   * a PostgreSQL store (HA needs it) and leaves it off for the files.
   */
  triggerAfterWrite?: boolean;
}

export const defaultWpkOptions = {
  triggerAfterWrite: false,
  acceptTimeoutMs: 10_000,
  timeoutGraceMs: 2000,
  lostAfterRestartMs: 60_000,
  defaultConcurrency: 1,
  busyRestMs: 2000,
  sweepIntervalMs: 250,
  retentionMs: 7 * 24 * 3600 * 1000,
  maxFinished: 10_000,
} as const;

export interface WpkDeps {
  topics: Topics;
  registry: Registry;
  out: Publisher;
  counters: HubCounters;
  refusals: Refusals;
  log: Logger;
  /** Where work packages are written, as batches of changes. */
  store: Pick<Store, 'writeWpks'>;
  /** Told of each write's outcome: it logs an outage once (default: every failure is logged). */
  storeHealth?: StoreHealth;
  startedAt: number;
  observe?: HubObservers;
  /** Time and the sweep timer (default: the system clock). */
  clock?: Clock;
}

/** Own triggers not yet seen back from the broker; bounded so a lost echo cannot grow it. */
const MAX_PENDING_ECHOES = 100_000;

export class WpkService implements WorkPackages {
  readonly #o: Required<Omit<WpkOptions, 'defaults' | 'flush'>>;
  readonly #defaults: WpkDefaults;
  readonly #engine: WpkEngine;
  readonly #flusher: Flusher;
  /**
   * Triggers whose attempt is not in the store yet. A trigger goes out only
   * once the batch that records its attempt is committed: a hub that dies
   * between the two must not leave a successor (or itself, restarted) that
   * knows nothing of a dispatch a node already runs, and dispatches again.
   */
  #held: Array<{ topic: string; payload: string }> = [];
  /** Changed since the last write (the next write's batch), and forgotten ones. */
  #dirty = new Set<WpkRecord>();
  #removed = new Set<string>();
  readonly #ownTriggers = new Map<string, number>();
  readonly #clock: Clock;
  #sweep: TimerHandle | undefined;
  #pace: TimerHandle | undefined;
  #running = false;

  constructor(private readonly deps: WpkDeps, options: WpkOptions = {}) {
    const { defaults, flush, ...rest } = options;
    this.#o = { ...defaultWpkOptions, ...rest };
    this.#defaults = { ...DEFAULT_WPK, ...defaults };
    this.#clock = deps.clock ?? systemClock;
    this.#flusher = new Flusher(() => this.#write(), {
      ...defaultFlusherOptions,
      ...flush,
      onError: (err) => {
        deps.counters.flush_errors += 1;
        if (deps.storeHealth) deps.storeHealth.failed(err, 'work packages');
        else deps.log.error(errorFields(err), 'work package flush failed; will retry');
      },
      onFlushed: () => deps.storeHealth?.succeeded('work packages'),
    });
    const signals: Signals = { trigger: (w, attempt, who) => this.#trigger(w, attempt, who), cancel: (n, w, a) => this.#cancelCommand(n, w, a) };
    this.#engine = new WpkEngine({
      registry: deps.registry, signals, finished: (w) => this.#dirty.add(w), counters: deps.counters, log: deps.log, startedAt: deps.startedAt, ...(deps.observe ? { observe: deps.observe } : {}),
    }, this.#o);
  }

  /** Takes the work packages the store held (oldest first). */
  restore(records: WpkRecord[]): void {
    this.#engine.restore(records);
    const open = this.#engine.open.size;
    if (this.#engine.all.size > 0) this.deps.log.info({ wpks: this.#engine.all.size, open }, 'work packages loaded');
  }

  start(): void {
    this.#running = true;
    this.#armSweep();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#clock.clearTimeout(this.#sweep);
    this.#clock.clearTimeout(this.#pace);
    this.#sweep = undefined;
    await this.#flusher.stop();
  }

  /** Stops at once, writing nothing more (the hub stepped down). */
  abandon(): void {
    this.#running = false;
    this.#clock.clearTimeout(this.#sweep);
    this.#clock.clearTimeout(this.#pace);
    this.#sweep = undefined;
    this.#flusher.abandon();
  }

  /** One timer re-armed after each sweep (the Clock has no interval: one primitive for a fake to get right). */
  #armSweep(): void {
    this.#sweep = this.#clock.setTimeout(() => {
      try {
        this.#tick();
      } finally {
        // As setInterval did: one failed tick does not end the sweeps.
        if (this.#running) this.#armSweep();
      }
    }, this.#o.sweepIntervalMs);
  }

  flush(): Promise<void> { return this.#flusher.flushNow(); }

  async create(request: HttpWpkRequest): Promise<WpkRecord> {
    const checked = validators.httpWpkRequest(request);
    if (!checked.ok) throw new WpkRequestError(422, 'EDGEFED_ERR_SCHEMA', `work package request: ${checked.errors.join('; ')}`);
    const now = this.#clock.now();
    const w = newWpk(checked.value, now, this.#defaults);
    this.#engine.add(w, now);
    this.#dirty.add(w);
    if (w.rollout) this.#armPace(now);
    this.deps.log.info({ wpk_id: w.wpk_id, capability: w.capability, action: w.action, mode: w.mode, state: w.state, assignee: w.assignee }, 'work package created');
    await this.#flusher.whenWritten();
    return w;
  }

  get(wpkId: string): WpkRecord | undefined {
    return this.#engine.all.get(wpkId);
  }

  list(filter: WpkListFilter = {}): WpkRecord[] {
    return listWpks([...this.#engine.all.values()], filter);
  }

  async cancel(wpkId: string): Promise<WpkRecord> {
    const w = this.#engine.all.get(wpkId);
    if (!w) throw new WpkRequestError(404, 'EDGEFED_ERR_WPK_NOT_FOUND', `no work package "${wpkId}"`);
    if (isFinalWpk(w)) throw new WpkRequestError(409, 'EDGEFED_ERR_WPK_FINISHED', `work package ${wpkId} already ended ${w.state}; only an unfinished one can be canceled`);
    this.#engine.cancel(w, this.#clock.now(), 'canceled by an operator');
    this.#dirty.add(w);
    await this.#flusher.whenWritten();
    return w;
  }

  /** Executions the hub has in flight on a node (what placement counts against its max_concurrency). */
  inFlightOn(nodeId: string): number {
    return this.#engine.placement.load(nodeId);
  }

  countByState(): Record<WpkState, number> {
    return countWpksByState(this.#engine.all.values());
  }

  countOpenExecutions(): Partial<Record<ExecutionRecordState, number>> {
    return countOpenExecutions(this.#engine.open.values());
  }

  /** From the router: a node's admitted execution update. */
  onExecution(nodeId: string, update: ExecutionUpdate): void {
    const w = this.#engine.all.get(update.wpk_id);
    if (w) changed(w); // a finished WPK may take a late result: its kept JSON is stale
    const change = this.#engine.onUpdate(nodeId, update, this.#clock.now());
    if (w && change !== 'none') this.#dirty.add(w);
    this.#mark(change);
  }

  /** From the registry handlers: a node's status or registration changed. */
  nodeChanged(nodeId: string): void {
    const now = this.#clock.now();
    this.#engine.placement.invalidate();
    // Give up on work the node lost first (a restart frees its slots), then offer it new work.
    const gaveUp = this.#engine.check(now, nodeId);
    const dispatched = this.deps.registry.get(nodeId)?.status === 'active' && this.#engine.pump(nodeId, now);
    if (gaveUp || dispatched) this.#openChanged();
  }

  /**
   * A trigger seen on the broker. Only the hub publishes triggers: anything
   * but its own echo is refused (logged, counted). Agents cannot tell who
   * published; the broker's ACL stops foreign triggers before they arrive.
   */
  onTriggerSeen(topic: string): void {
    const pending = this.#ownTriggers.get(topic) ?? 0;
    if (pending > 0) {
      if (pending === 1) this.#ownTriggers.delete(topic);
      else this.#ownTriggers.set(topic, pending - 1);
      return;
    }
    this.deps.refusals.record({ code: 'not_allowed', reason: 'only the hub publishes work package triggers; this one was not the hub\'s', topic, via: 'mqtt' });
  }

  #tick(): void {
    const now = this.#clock.now();
    const gaveUp = this.#engine.check(now);
    const woke = this.#engine.wake(now);
    if (gaveUp || woke) this.#openChanged();
    this.#timed(now);
    if (this.#prune(now) > 0) this.#flusher.markDirty('durable');
  }

  /** Scheduled starts and rollout slots; only the WPKs they moved are written. Then the timer for the next slot. */
  #timed(now: number): void {
    const moved = this.#engine.timed(now);
    for (const w of moved) this.#dirty.add(w);
    if (moved.length > 0) this.#flusher.markDirty('durable');
    this.#armPace(now);
  }

  /**
   * A timer for the next rollout slot when it falls before the next sweep:
   * at 150 a minute the sweep alone would spread dispatches 250-650 ms
   * apart instead of every 400 ms.
   */
  #armPace(now: number): void {
    this.#clock.clearTimeout(this.#pace);
    this.#pace = undefined;
    const at = this.#running ? this.#engine.nextSlotAfter(now) : undefined;
    if (at === undefined || at - now >= this.#o.sweepIntervalMs) return;
    this.#pace = this.#clock.setTimeout(() => {
      this.#pace = undefined;
      this.#timed(this.#clock.now());
    }, at - now);
  }

  /** Forgets finished WPKs past their retention, and the oldest beyond maxFinished. */
  #prune(now: number): number {
    const all = this.#engine.all;
    let over = all.size - this.#engine.open.size - this.#o.maxFinished;
    let pruned = 0;
    for (const w of all.values()) {
      if (!isFinalWpk(w)) continue;
      if (over > 0 || now - (w.finished_at ?? w.created_at) > this.#o.retentionMs) {
        all.delete(w.wpk_id);
        this.#dirty.delete(w);
        this.#removed.add(w.wpk_id);
        over -= 1;
        pruned += 1;
      } else if (over <= 0) {
        break; // creation order is roughly finish order: the rest is younger
      }
    }
    return pruned;
  }

  /** The engine moved open work (timeouts, dispatch): any open WPK may have changed; ended ones came through `finished`. */
  #openChanged(): void {
    for (const w of this.#engine.open.values()) this.#dirty.add(w);
    this.#flusher.markDirty('durable');
  }

  /** One batch for the store; a failed write leaves its WPKs pending for the retry. */
  async #write(): Promise<void> {
    const upserted = [...this.#dirty];
    const removed = [...this.#removed];
    const held = this.#held;
    this.#dirty = new Set();
    this.#removed = new Set();
    this.#held = [];
    try {
      await this.deps.store.writeWpks({ upserted, removed });
    } catch (err) {
      for (const w of upserted) if (this.#engine.all.has(w.wpk_id)) this.#dirty.add(w);
      for (const id of removed) this.#removed.add(id);
      this.#held = held.concat(this.#held);
      throw err;
    }
    for (const t of held) this.deps.out.publish(t.topic, t.payload, { qos: 1, retain: false });
  }

  #mark(change: Change): void {
    if (change !== 'none') this.#flusher.markDirty(change);
  }

  #trigger(w: WpkRecord, attempt: number, who: { assignee: string } | { targets: string[] }): void {
    const t: WpkTrigger = {
      wpk_id: w.wpk_id, capability: w.capability, action: w.action, params: w.params, mode: w.mode,
      ...who, attempt, created_at: w.created_at, deadline: w.deadline, timeout_ms: w.timeout_ms,
    };
    // A trigger for one node goes to that node's own trigger topic: on the
    // shared capability topic every capable node would receive every WPK
    // (1000 nodes: 1000 deliveries per WPK, ~70 WPK/s in bench/RESULTS.md).
    const one = 'assignee' in who ? who.assignee : who.targets.length === 1 ? who.targets[0] : undefined;
    const topic = this.deps.topics.trigger(w.capability, one);
    if (this.#ownTriggers.size < MAX_PENDING_ECHOES) this.#ownTriggers.set(topic, (this.#ownTriggers.get(topic) ?? 0) + 1);
    this.deps.counters.wpks.triggers += 1;
    this.deps.observe?.triggered.emit();
    if (!this.#o.triggerAfterWrite) {
      this.deps.out.publish(topic, JSON.stringify(t), { qos: 1, retain: false });
      return;
    }
    this.#held.push({ topic, payload: JSON.stringify(t) });
    this.#dirty.add(w);
    this.#flusher.markDirty('now');
  }

  #cancelCommand(nodeId: string, wpkId: string, attempt: number): void {
    const c: CancelCommand = { command: 'cancel', wpk_id: wpkId, attempt, ts: this.#clock.now() };
    this.deps.counters.wpks.cancel_commands += 1;
    this.deps.out.publish(this.deps.topics.commands(nodeId), JSON.stringify(c), { qos: 1, retain: false });
  }
}
