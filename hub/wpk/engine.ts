/**
 * The work-package state machine: dispatch, failover, completion. It holds
 * every WPK in memory, decides each move from the registry and the nodes'
 * updates, and tells `Signals` what to publish; persistence, timers and the
 * API live in the service around it.
 */
import type { Logger } from '../../lib/log.js';
import type { ExecutionUpdate } from '../../lib/wire.js';
import type { HubObservers } from '../observe.js';
import { MAX_TARGETS } from '../../lib/limits.js';
import type { HubCounters } from '../counters.js';
import type { NodeRecord, Registry } from '../registry.js';
import {
  acceptsUpdate, applyUpdate, describeEnd, endExecution, finish, isFinalWpk, isInFlight, newExecution, progressState, skippedExecution, summarize,
} from './model.js';
import { isBusy, Placement } from './placement.js';
import type { ExecutionRecord, WpkRecord, WpkState } from './types.js';

/** What the engine asks the hub to publish. */
export interface Signals {
  trigger(w: WpkRecord, attempt: number, who: { assignee: string } | { targets: string[] }): void;
  cancel(nodeId: string, wpkId: string, attempt: number): void;
}

export interface EngineOptions {
  acceptTimeoutMs: number;
  /** Added to a WPK's timeout before the hub gives up on an attempt itself (the agent enforces the timeout first). */
  timeoutGraceMs: number;
  /** A node not heard from this long after the hub started is taken as lost. */
  lostAfterRestartMs: number;
  defaultConcurrency: number;
  /** A node that answered `busy` gets no new work for this long. */
  busyRestMs: number;
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
  /** Open WPKs waiting for a node (or a free slot), per capability, oldest first. */
  readonly #waiting = new Map<string, Set<WpkRecord>>();
  /** Creation order of the WPKs this process knows: what "oldest first" means. */
  readonly #age = new WeakMap<WpkRecord, number>();
  #created = 0;
  readonly placement: Placement;

  constructor(private readonly deps: EngineDeps, private readonly opts: EngineOptions) {
    this.placement = new Placement(deps.registry, { defaultConcurrency: opts.defaultConcurrency });
  }

  /** Takes records from disk: open ones keep their slots and timers. */
  restore(records: Iterable<WpkRecord>): void {
    for (const w of records) {
      this.all.set(w.wpk_id, w);
      this.#age.set(w, ++this.#created);
      if (isFinalWpk(w)) continue;
      this.open.set(w.wpk_id, w);
      for (const e of w.executions) if (isInFlight(e)) this.placement.hold(e.node_id, key(w, e));
      // A mode-one attempt in flight waits for its node, not for a slot: its end moves it on.
      if (w.mode === 'all' || !w.executions.some(isInFlight)) this.#wait(w);
    }
  }

  add(w: WpkRecord, now: number): void {
    this.all.set(w.wpk_id, w);
    this.#age.set(w, ++this.#created);
    this.open.set(w.wpk_id, w);
    this.deps.counters.wpks.created += 1;
    if (w.mode === 'all' && !w.include_offline) this.#skipOffline(w, now);
    this.advance(w, now);
  }

  /**
   * Mode `all` targets the matching nodes that are active or stale when it is
   * created: one that is offline then gets a `skipped` execution, so the WPK
   * does not wait an hour for a node that may never come back.
   */
  #skipOffline(w: WpkRecord, now: number): void {
    for (const node of this.deps.registry.all()) {
      if (node.status === 'offline' && this.placement.matches(w, node)) w.executions.push(skippedExecution(node.node_id, node.boot_id, now));
    }
  }

  /** Moves an open WPK on as far as it can go now: dispatch, retry, or finish. */
  advance(w: WpkRecord, now: number): void {
    if (isFinalWpk(w)) return;
    if (w.mode === 'one') this.#advanceOne(w, now);
    else this.#advanceAll(w, now);
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
    if (!node) return this.#wait(w);
    this.#unwait(w);
    w.attempt += 1;
    if (w.attempt > 1) this.deps.counters.wpks.redispatches += 1;
    w.assignee = node.node_id;
    this.#dispatch(w, node, w.attempt, now);
    this.deps.signals.trigger(w, w.attempt, { assignee: node.node_id });
  }

  /**
   * Mode `all`: every matching node runs it once. Nodes that are registered
   * but away (or busy) are waited for until the deadline; the WPK ends when
   * every one of them has finished, or at the deadline once nothing runs.
   */
  #advanceAll(w: WpkRecord, now: number): void {
    const served = new Set(w.executions.map((e) => e.node_id));
    let unserved = 0;
    const targets: string[] = [];
    for (const node of this.deps.registry.all()) {
      if (served.has(node.node_id) || !this.placement.matches(w, node)) continue;
      if (now < w.deadline && this.placement.eligible(w, node) && this.placement.hasRoom(node, now)) {
        this.#dispatch(w, node, 1, now);
        targets.push(node.node_id);
      } else {
        unserved += 1;
      }
    }
    if (targets.length > 0) w.attempt = 1;
    for (let i = 0; i < targets.length; i += MAX_TARGETS) this.deps.signals.trigger(w, 1, { targets: targets.slice(i, i + MAX_TARGETS) });
    // Until the deadline it waits for registered nodes that are away or busy,
    // for the first node when there is none, and, while some node still runs
    // it, for nodes that register meanwhile: they get it too.
    const running = w.executions.some(isInFlight);
    if (now < w.deadline && (unserved > 0 || w.executions.length === 0 || running)) return this.#wait(w);
    this.#unwait(w);
    if (running) return;
    this.#finishAll(w, unserved, now);
  }

  /** Succeeded when every execution that ran succeeded and one at least ran; `skipped` ones did not run. */
  #finishAll(w: WpkRecord, missed: number, now: number): void {
    const skipped = w.executions.filter((e) => e.state === 'skipped').length;
    const ran = w.executions.length - skipped;
    const ok = w.executions.filter((e) => e.state === 'succeeded').length;
    if (ran === 0 && skipped === 0) return this.#finish(w, 'expired', now, `no node with capability "${w.capability}" could take it before the deadline`);
    const parts = [`${ok} of ${ran} node(s) succeeded`];
    if (skipped > 0) parts.push(`${skipped} skipped (offline at creation)`);
    if (missed > 0) parts.push(`${missed} node(s) were not reached before the deadline`);
    const success = ran > 0 && ok === ran && missed === 0;
    this.#finish(w, success ? 'succeeded' : 'failed', now, success ? null : parts.join('; '));
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
      for (const e of w.executions) {
        if (!isInFlight(e) || (onlyNode !== undefined && e.node_id !== onlyNode)) continue;
        const why = this.#whyGiveUp(w, e, now);
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

  #heldBy(nodeId: string): WpkRecord[] {
    const out = new Set<WpkRecord>();
    for (const k of this.placement.keysOf(nodeId)) {
      const w = this.open.get(k.slice(0, k.indexOf('#'))); // ids cannot hold '#': the key's first field is the wpk_id
      if (w) out.add(w);
    }
    return [...out];
  }

  #whyGiveUp(w: WpkRecord, e: ExecutionRecord, now: number): { state: 'lost' | 'timed_out'; reason: string; acceptTimeout?: boolean } | undefined {
    const node = this.deps.registry.get(e.node_id);
    const lost = this.#lostReason(node, e, now);
    if (lost) return { state: 'lost', reason: lost };
    // Work restored from disk gets its full time again from the hub's start.
    const since = (t: number) => now - Math.max(t, this.deps.startedAt);
    if (e.state === 'dispatched' && since(e.dispatched_at) > this.opts.acceptTimeoutMs) {
      return { state: 'lost', reason: `did not accept within ${this.opts.acceptTimeoutMs} ms`, acceptTimeout: true };
    }
    if (e.state !== 'dispatched' && since(e.started_at ?? e.dispatched_at) > w.timeout_ms + this.opts.timeoutGraceMs) {
      return { state: 'timed_out', reason: `exceeded its timeout of ${w.timeout_ms} ms` };
    }
    return undefined;
  }

  #lostReason(node: NodeRecord | undefined, e: ExecutionRecord, now: number): string | undefined {
    if (!node || node.status === 'deregistered') return 'node left the federation';
    if (node.boot_id !== e.boot_id) return 'node restarted (new boot_id)';
    if (node.status === 'offline') return `node went offline (${node.status_reason ?? 'lost'})`;
    if (node.status === 'stale' && node.status_reason === 'no_heartbeat') return 'node stopped sending heartbeats';
    if (node.status === 'stale' && now - this.deps.startedAt > this.opts.lostAfterRestartMs) return 'node not heard from since the hub restarted';
    return undefined;
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
      const waiting = this.#waiting.get(cap);
      if (!waiting) continue;
      // Deleting while iterating a Set is safe; advance() only removes the current WPK.
      for (const w of waiting) {
        if (!this.placement.hasRoom(node, now)) return moved;
        const before = w.executions.length;
        this.advance(w, now);
        if (w.executions.length !== before || isFinalWpk(w)) moved = true;
        // One that stays (this node refused it, or it selects other nodes) must not hold up the rest.
      }
    }
    return moved;
  }

  #finish(w: WpkRecord, state: WpkState, now: number, error: string | null, result: Record<string, unknown> | null = null): void {
    for (const e of w.executions) {
      if (!isInFlight(e)) continue;
      endExecution(e, 'canceled', state === 'canceled' ? (error ?? 'canceled') : `the WPK ${state} elsewhere`, now);
      this.#release(w, e);
      this.deps.signals.cancel(e.node_id, w.wpk_id, e.attempt);
    }
    finish(w, state, now, error, result);
    this.open.delete(w.wpk_id);
    this.#unwait(w);
    this.deps.finished?.(w);
    this.deps.counters.wpks.finished[state] = (this.deps.counters.wpks.finished[state] ?? 0) + 1;
    this.deps.observe?.wpkFinished.emit(state, now - w.created_at);
    this.deps.log.info({ wpk_id: w.wpk_id, state, attempts: w.attempt, error }, 'work package finished');
  }

  #release(w: WpkRecord, e: ExecutionRecord): void {
    this.placement.release(e.node_id, key(w, e));
  }

  #wait(w: WpkRecord): void {
    const set = this.#waiting.get(w.capability);
    if (!set) return void this.#waiting.set(w.capability, new Set([w]));
    if (set.has(w)) return;
    if (w.executions.length === 0) return void set.add(w); // new: the youngest
    // Back to waiting (its node was lost, or rejected it busy): it keeps its
    // place by age, oldest first, rather than queueing behind newer work.
    const age = this.#age.get(w) ?? 0;
    const ordered = new Set<WpkRecord>();
    for (const x of set) {
      if (!ordered.has(w) && (this.#age.get(x) ?? 0) > age) ordered.add(w);
      ordered.add(x);
    }
    ordered.add(w);
    this.#waiting.set(w.capability, ordered);
  }

  #unwait(w: WpkRecord): void {
    const set = this.#waiting.get(w.capability);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.#waiting.delete(w.capability);
  }
}
