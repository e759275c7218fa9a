/**
 * The work-package state machine: dispatch, failover, completion. It holds
 * every WPK in memory, decides each move from the registry and the nodes'
 * updates, and tells `Signals` what to publish; persistence, timers and the
 * API live in the service around it.
 */
import type { Logger } from '../../lib/log.js';
import type { ExecutionUpdate } from '../../lib/wire.js';
import type { HubObservers } from '../observe.js';
import type { HubCounters } from '../counters.js';
import type { NodeRecord, Registry } from '../registry.js';
import {
  acceptsUpdate, applyUpdate, describeEnd, endExecution, finish, isFinalWpk, isInFlight, isQueued, newExecution, normalizeWpk, progressState,
  skipQueued, summarize,
} from './model.js';
import { isBusy, Placement } from './placement.js';
import { FanOut, notReached } from './fan-out.js';
import { whyGiveUp, type GiveUpRules } from './give-up.js';
import type { ExecutionRecord, Signals, WpkRecord, WpkState } from './types.js';
import { WaitingList } from './waiting.js';

export type { Signals } from './types.js';

export interface EngineOptions {
  acceptTimeoutMs: number;
  /** Added to a WPK's timeout before the hub gives up on an attempt itself (the agent enforces the timeout first). */
  timeoutGraceMs: number;
  /** A node not heard from this long after the hub started is taken as lost. */
  lostAfterRestartMs: number;
  defaultConcurrency: number;
  /** A node that answered `busy` gets no new work for this long. */
  busyRestMs: number;
  /** How often check() runs: a rollout dispatches at most this much time's worth of its rate at once. */
  sweepIntervalMs: number;
}

export interface EngineDeps {
  registry: Registry;
  signals: Signals;
  counters: HubCounters;
  log: Logger;
  /** When this hub process started: timers of work restored from disk count from here. */
  startedAt: number;
  /** Reports dispatch latency and finished WPKs (metrics, the dashboard). */
  /** A WPK ended (the service's journal: it must be written). */
  finished?: (w: WpkRecord) => void;
  observe?: Pick<HubObservers, 'dispatchAnswered' | 'wpkFinished'>;
}

/** What a change means for persistence (as for the registry). */
export type Change = 'durable' | 'liveness' | 'none';

const key = (w: WpkRecord, e: ExecutionRecord) => `${w.wpk_id}#${e.attempt}#${e.node_id}`;

export class WpkEngine {
  readonly all = new Map<string, WpkRecord>();
  /** WPKs not finished yet, in creation order. */
  readonly open = new Map<string, WpkRecord>();
  readonly #waiting = new WaitingList();
  readonly placement: Placement;
  readonly #fanOut: FanOut;
  /** Built once: the sweep asks them of every execution in flight, four times a second. */
  readonly #giveUpRules: GiveUpRules;

  constructor(private readonly deps: EngineDeps, private readonly opts: EngineOptions) {
    this.placement = new Placement(deps.registry, { defaultConcurrency: opts.defaultConcurrency });
    this.#giveUpRules = { ...opts, startedAt: deps.startedAt };
    this.#fanOut = new FanOut({
      registry: deps.registry, placement: this.placement, signals: deps.signals, log: deps.log, waiting: this.#waiting,
      sweepIntervalMs: opts.sweepIntervalMs,
      hold: (w, e) => this.placement.hold(e.node_id, key(w, e)),
      finish: (w, state, now, error) => this.#finish(w, state, now, error),
    });
  }

  /** Takes records from disk: open ones keep their slots and timers. */
  restore(records: Iterable<WpkRecord>): void {
    for (const w of records) {
      normalizeWpk(w);
      this.all.set(w.wpk_id, w);
      this.#waiting.born(w);
      if (isFinalWpk(w)) continue;
      this.open.set(w.wpk_id, w);
      for (const e of w.executions) if (isInFlight(e)) this.placement.hold(e.node_id, key(w, e));
      // A mode-one attempt in flight waits for its node, not for a slot: its end moves it on.
      if (w.state !== 'scheduled' && (w.mode === 'all' || !w.executions.some(isInFlight))) this.#waiting.add(w);
    }
  }

  add(w: WpkRecord, now: number): void {
    this.all.set(w.wpk_id, w);
    this.#waiting.born(w);
    this.open.set(w.wpk_id, w);
    this.deps.counters.wpks.created += 1;
    if (w.state !== 'scheduled') this.#start(w, now);
  }

  /** The WPK's start (at creation, or at its start_at): it takes its targets and goes. */
  #start(w: WpkRecord, now: number): void {
    // Continuous work runs on nodes offline now once they come back: it skips no one.
    if (w.mode === 'all' && !w.include_offline && !w.continuous) this.#fanOut.skipOffline(w, now);
    this.advance(w, now);
  }

  /** Moves an open WPK on as far as it can go now: dispatch, retry, or finish. */
  advance(w: WpkRecord, now: number): void {
    if (isFinalWpk(w) || w.state === 'scheduled') return;
    if (w.mode === 'one') this.#advanceOne(w, now);
    else this.#fanOut.advance(w, now);
    this.#settle(w, now);
  }

  /** An open WPK's state follows its executions. */
  #settle(w: WpkRecord, now: number): void {
    if (isFinalWpk(w)) return;
    const state = progressState(w);
    if (state !== w.state) { w.state = state; w.updated_at = now; }
  }

  #advanceOne(w: WpkRecord, now: number): void {
    const last = w.executions.at(-1);
    if (last && isInFlight(last)) return;
    if (last && w.attempt >= w.max_attempts) {
      const state: WpkState = last.state === 'timed_out' ? 'timed_out' : 'failed';
      return this.#finish(w, state, now, `gave up after ${w.attempt} attempt(s); ${describeEnd(last)}`);
    }
    if (now >= w.deadline) {
      return this.#finish(w, 'expired', now, last ? `deadline passed before a new attempt; ${describeEnd(last)}` : 'no capable node could take it before the deadline');
    }
    const node = this.placement.pick(w, now);
    if (!node && last?.state === 'rejected' && !this.placement.anyoneLeft(w)) {
      return this.#finish(w, 'failed', now, `every capable node rejected it; ${describeEnd(last)}`);
    }
    if (!node) return this.#waiting.add(w);
    this.#waiting.remove(w);
    w.attempt += 1;
    if (w.attempt > 1) this.deps.counters.wpks.redispatches += 1;
    w.assignee = node.node_id;
    this.#dispatch(w, node, w.attempt, now);
    this.deps.signals.trigger(w, w.attempt, { assignee: node.node_id });
  }

  #dispatch(w: WpkRecord, node: NodeRecord, attempt: number, now: number): void {
    const e = newExecution(node.node_id, node.boot_id, attempt, now);
    w.executions.push(e);
    w.updated_at = now;
    this.placement.hold(node.node_id, key(w, e));
  }

  /** A node's update of one execution. Returns what it changed, for persistence. */
  onUpdate(nodeId: string, u: ExecutionUpdate, now: number): Change {
    this.deps.registry.responsive(nodeId); // any execution update, even a late one, shows the node is there
    const w = this.all.get(u.wpk_id);
    const e = w?.executions.find((x) => x.node_id === nodeId && x.attempt === u.attempt);
    if (!w || !e) {
      this.deps.counters.ignored.unknown_execution += 1;
      this.deps.log.info({ node_id: nodeId, wpk_id: u.wpk_id, attempt: u.attempt, state: u.state }, 'execution update for work the hub did not dispatch; ignored');
      return 'none';
    }
    if (!acceptsUpdate(e.state, u.state)) {
      this.deps.counters.ignored.stale_update += 1;
      return 'none';
    }
    const progressOnly = u.state === 'running' && e.state === 'running';
    const wasInFlight = isInFlight(e);
    const firstAnswer = e.state === 'dispatched';
    applyUpdate(e, u, now);
    if (firstAnswer) this.deps.observe?.dispatchAnswered.emit(now - e.dispatched_at);
    if (e.state === 'rejected' && isBusy(e.error)) this.placement.rest(nodeId, now + this.opts.busyRestMs);
    w.updated_at = now;
    if (wasInFlight && !isInFlight(e)) this.#release(w, e);
    if (isFinalWpk(w)) {
      summarize(w);
      this.deps.log.info({ wpk_id: w.wpk_id, node_id: nodeId, attempt: e.attempt, state: e.state, wpk_state: w.state }, 'late execution result recorded; the WPK stays finished');
      return 'durable';
    }
    this.#onOpenUpdate(w, e, now);
    if (wasInFlight && !isInFlight(e)) this.pump(nodeId, now);
    return progressOnly ? 'liveness' : 'durable';
  }

  #onOpenUpdate(w: WpkRecord, e: ExecutionRecord, now: number): void {
    if (w.mode === 'one' && e.state === 'succeeded') {
      // The first success wins, even from an attempt the hub had given up on.
      this.#finish(w, 'succeeded', now, null, e.result ?? {});
      return;
    }
    if (w.mode === 'one' && e.state === 'failed' && e === w.executions.at(-1)) {
      // The action ran and failed: running it elsewhere would repeat its side effects.
      this.#finish(w, 'failed', now, describeEnd(e));
      return;
    }
    this.advance(w, now);
  }

  /** The hub ends an in-flight execution itself; the WPK moves on (retry or finish). */
  giveUp(w: WpkRecord, e: ExecutionRecord, state: 'lost' | 'timed_out', reason: string, now: number): void {
    endExecution(e, state, reason, now);
    this.#release(w, e);
    // Tell the node to stop: it may still be running (a timeout, a network split).
    this.deps.signals.cancel(e.node_id, w.wpk_id, e.attempt);
    this.deps.log.warn({ wpk_id: w.wpk_id, node_id: e.node_id, attempt: e.attempt, state, reason }, 'execution given up');
    this.advance(w, now);
    this.pump(e.node_id, now);
  }

  /** Cancels an open WPK: it is final at once; nodes running it are told to stop. */
  cancel(w: WpkRecord, now: number, reason: string): void {
    this.#finish(w, 'canceled', now, reason);
  }

  /**
   * Checks the in-flight executions of open WPKs against the registry and the
   * clock (every sweep, and at once when a node changes). Returns whether
   * anything changed.
   */
  check(now: number, onlyNode?: string): boolean {
    let changed = false;
    // For one node, only the WPKs it holds slots for: a fleet re-announcing
    // after a hub restart must not cost (nodes x open WPKs).
    const candidates = onlyNode === undefined ? [...this.open.values()] : this.#heldBy(onlyNode);
    for (const w of candidates) {
      if (w.state === 'scheduled') continue; // nothing in flight; timed() starts it
      for (const e of w.executions) {
        if (!isInFlight(e) || (onlyNode !== undefined && e.node_id !== onlyNode)) continue;
        const why = whyGiveUp(this.#giveUpRules, w, e, this.deps.registry.get(e.node_id), now);
        if (why) {
          if (e.state === 'dispatched' && why.acceptTimeout) this.deps.registry.markUnresponsive(e.node_id, now);
          this.giveUp(w, e, why.state, why.reason, now);
          changed = true;
        }
      }
      if (!isFinalWpk(w) && onlyNode === undefined && now >= w.deadline && !w.executions.some(isInFlight)) {
        this.advance(w, now);
        changed = true;
      }
    }
    return changed;
  }

  /**
   * Each sweep and at each rollout slot: scheduled WPKs whose start has come
   * start, rollouts whose slot has come dispatch. Returns the WPKs it moved,
   * and only those: the slots of one rollout must not rewrite every open
   * WPK (a large rollout's record holds an execution per target).
   */
  timed(now: number): WpkRecord[] {
    const moved: WpkRecord[] = [];
    for (const w of this.open.values()) {
      if (w.state === 'scheduled') {
        if (now >= (w.start_at ?? 0)) moved.push(this.#startScheduled(w, now));
      } else if (this.#pace(w, now)) {
        moved.push(w);
      }
    }
    return moved;
  }

  /** The next rollout slot still to come (epoch ms), if any: the service sets a timer for it, so a rate is kept to the millisecond rather than to the sweep. */
  nextSlotAfter(now: number): number | undefined {
    let next: number | undefined;
    for (const w of this.open.values()) {
      const at = w.rollout ? w.next_dispatch_at : null;
      if (at !== null && at > now && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  #startScheduled(w: WpkRecord, now: number): WpkRecord {
    w.state = 'pending';
    w.updated_at = now;
    this.deps.log.info({ wpk_id: w.wpk_id, start_at: w.start_at }, 'scheduled work package starts');
    this.#start(w, now);
    return w;
  }

  #pace(w: WpkRecord, now: number): boolean {
    if (isFinalWpk(w)) return false;
    const outcome = this.#fanOut.pace(w, now);
    if (outcome === 'skipped') this.advance(w, now);
    // A dispatch moves only a `pending` WPK on (settling walks every execution: not at every slot).
    else if (outcome === 'dispatched' && w.state === 'pending') this.#settle(w, now);
    return outcome !== 'none';
  }

  #heldBy(nodeId: string): WpkRecord[] {
    const out = new Set<WpkRecord>();
    for (const k of this.placement.keysOf(nodeId)) {
      const w = this.open.get(k.slice(0, k.indexOf('#'))); // ids cannot hold '#': the key's first field is the wpk_id
      if (w) out.add(w);
    }
    return [...out];
  }

  /** Nodes whose rest after a `busy` is over take waiting work again. */
  wake(now: number): boolean {
    let moved = false;
    for (const nodeId of this.placement.rested(now)) moved = this.pump(nodeId, now) || moved;
    return moved;
  }

  /** A node became available or freed a slot: offer it the waiting work of its capabilities, oldest first. */
  pump(nodeId: string, now: number): boolean {
    const node = this.deps.registry.get(nodeId);
    if (!node || node.status !== 'active') return false;
    let moved = false;
    for (const cap of node.capabilities) {
      const waiting = this.#waiting.of(cap);
      if (!waiting) continue;
      // Deleting while iterating a Set is safe; advance() only removes the current WPK.
      for (const w of waiting) {
        if (!this.placement.hasRoom(node, now)) return moved;
        const before = w.executions.length;
        if (w.mode === 'all') {
          this.#fanOut.reachOne(w, node, now);
          this.#settle(w, now);
        } else {
          this.advance(w, now);
        }
        if (w.executions.length !== before || isFinalWpk(w)) moved = true;
        // One that stays (this node refused it, or it selects other nodes) must not hold up the rest.
      }
    }
    return moved;
  }

  #finish(w: WpkRecord, state: WpkState, now: number, error: string | null, result: Record<string, unknown> | null = null): void {
    for (const e of w.executions) {
      if (isQueued(e)) skipQueued(e, notReached(state), now);
      if (!isInFlight(e)) continue;
      const why = state === 'canceled' ? (error ?? 'canceled') : state === 'aborted' ? 'the rollout was aborted' : `the WPK ${state} elsewhere`;
      endExecution(e, 'canceled', why, now);
      this.#release(w, e);
      this.deps.signals.cancel(e.node_id, w.wpk_id, e.attempt);
    }
    finish(w, state, now, error, result);
    this.open.delete(w.wpk_id);
    this.#waiting.remove(w);
    this.deps.finished?.(w);
    this.deps.counters.wpks.finished[state] = (this.deps.counters.wpks.finished[state] ?? 0) + 1;
    this.deps.observe?.wpkFinished.emit(state, now - w.created_at);
    this.deps.log.info({ wpk_id: w.wpk_id, state, attempts: w.attempt, error }, 'work package finished');
  }

  #release(w: WpkRecord, e: ExecutionRecord): void {
    this.placement.release(e.node_id, key(w, e));
  }
}
