/**
 * Mode `all`: every matching node runs the WPK once. Plain fan-out sends it
 * to every free matching node at once; a rollout queues its targets in a
 * documented order and dispatches them at its pace, and ends `aborted` when
 * an abort criterion is met; a continuous WPK stays open until its deadline
 * for nodes that match later. The engine owns the records, slots and ends;
 * this decides who gets the WPK and when.
 */
import { MAX_TARGETS } from '../../lib/limits.js';
import type { Logger } from '../../lib/log.js';
import type { NodeRecord, Registry } from '../registry.js';
import { isInFlight, isQueued, newExecution, queuedExecution, skippedExecution, skipQueued } from './model.js';
import type { Placement } from './placement.js';
import { describeAbort, firedCriterion, MAX_PER_MINUTE, ratePerMinute, rolloutOrder, takeSlot } from './rollout.js';
import type { ExecutionRecord, Signals, WpkRecord, WpkState } from './types.js';
import type { WaitingList } from './waiting.js';

/** What fan-out needs of the engine around it. */
export interface FanOutHost {
  readonly registry: Registry;
  readonly placement: Placement;
  readonly signals: Signals;
  readonly log: Logger;
  readonly waiting: WaitingList;
  /** How often the engine's sweep runs: a rollout sends at most this much time's worth of its rate at once. */
  readonly sweepIntervalMs: number;
  /** Takes a slot on the node for an execution now in flight. */
  hold(w: WpkRecord, e: ExecutionRecord): void;
  finish(w: WpkRecord, state: WpkState, now: number, error: string | null): void;
}

/** Why a rollout's queued target was not run, by how the WPK ended. */
export function notReached(state: WpkState): string {
  if (state === 'aborted') return 'the rollout was aborted before it reached this node';
  if (state === 'canceled') return 'the work package was canceled before the rollout reached this node';
  return `the rollout did not reach this node before the work package ended ${state}`;
}

export class FanOut {
  /** The nodes that have an execution of the WPK (each runs it once at most). */
  readonly #served = new WeakMap<WpkRecord, Set<string>>();
  /**
   * Per rollout, the index of its first `queued` execution: executions are
   * only appended and never go back to `queued`, so a slot starts there
   * instead of walking the dispatched ones (at 1,000 slots a second over
   * 100,000 targets, that walk alone did not finish a minute of rollout in
   * ten minutes).
   */
  readonly #queueStart = new WeakMap<WpkRecord, number>();
  /** Per ramp, its rate and until when it holds: counting the successes walks every execution, so not at every slot. */
  readonly #rates = new WeakMap<WpkRecord, { rate: number; until: number }>();

  constructor(private readonly host: FanOutHost) {}

  /**
   * Mode `all` targets the matching nodes that are active or stale when it
   * starts: one that is offline then gets a `skipped` execution, so the WPK
   * does not wait an hour for a node that may never come back.
   */
  skipOffline(w: WpkRecord, now: number): void {
    for (const node of this.host.registry.all()) {
      if (node.status === 'offline' && this.host.placement.matches(w, node)) this.#push(w, skippedExecution(node.node_id, node.boot_id, now));
    }
  }

  /**
   * Moves the WPK on as far as it can go now. Nodes that are registered but
   * away (or busy) are waited for until the deadline; the WPK ends when every
   * one of them has finished, or at the deadline once nothing runs.
   */
  advance(w: WpkRecord, now: number): void {
    if (this.#abortIfMet(w, now)) return;
    const open = now < w.deadline;
    const { targets, unserved } = this.#reach(w, now, this.host.registry.all());
    if (w.rollout && open) targets.push(...this.#paceStep(w, now).targets);
    this.#send(w, targets);
    // Until the deadline it waits for registered nodes that are away or busy,
    // for queued targets, for the first node when there is none, and, while
    // some node still runs it, for nodes that register meanwhile: they get it
    // too. A continuous WPK waits for newcomers until its deadline.
    const running = w.executions.some(isInFlight);
    const queued = w.executions.some(isQueued);
    if (open && (w.continuous || unserved > 0 || queued || w.executions.length === 0 || running)) return this.host.waiting.add(w);
    this.host.waiting.remove(w);
    if (running) return;
    this.#finish(w, unserved, now);
  }

  /**
   * One node became free: only that node is looked at (a continuous WPK
   * lives for days, and nodes come and go all the time). It never ends the
   * WPK: an execution's end or the deadline does that.
   */
  reachOne(w: WpkRecord, node: NodeRecord, now: number): void {
    if (now >= w.deadline) return;
    this.#send(w, this.#reach(w, now, [node]).targets);
  }

  /**
   * Each sweep: a rollout with queued targets dispatches those its pace
   * allows now. `skipped`: a queued node had left (that may have been the
   * last target: the caller moves the WPK on).
   */
  pace(w: WpkRecord, now: number): 'none' | 'dispatched' | 'skipped' {
    if (!w.rollout || now >= w.deadline || this.#firstQueued(w) >= w.executions.length) return 'none';
    const { targets, skipped } = this.#paceStep(w, now);
    this.#send(w, targets);
    if (skipped > 0) return 'skipped';
    return targets.length > 0 ? 'dispatched' : 'none';
  }

  /**
   * Matching nodes without an execution yet: dispatched now, queued behind
   * the rollout's earlier targets (in its documented order), or counted as
   * not served (away, busy, or past the deadline).
   */
  #reach(w: WpkRecord, now: number, nodes: Iterable<NodeRecord>): { targets: string[]; unserved: number } {
    const { placement } = this.host;
    const served = this.#servedBy(w);
    const targets: string[] = [];
    const fresh: NodeRecord[] = [];
    let unserved = 0;
    for (const node of nodes) {
      if (served.has(node.node_id) || !placement.matches(w, node)) continue;
      if (now >= w.deadline) unserved += 1;
      else if (w.rollout) fresh.push(node);
      else if (placement.eligible(w, node) && placement.hasRoom(node, now)) {
        const e = newExecution(node.node_id, node.boot_id, 1, now);
        this.#push(w, e);
        this.host.hold(w, e);
        targets.push(node.node_id);
      } else unserved += 1;
    }
    fresh.sort(rolloutOrder(w.rollout?.order_label));
    for (const node of fresh) this.#push(w, queuedExecution(node.node_id, node.boot_id, now));
    if (targets.length + fresh.length > 0) w.updated_at = now;
    return { targets, unserved };
  }

  /** A rollout's next dispatches: queued targets in order, as far as its pace allows now; nodes not free now keep their place. */
  #paceStep(w: WpkRecord, now: number): { targets: string[]; skipped: number } {
    const { placement } = this.host;
    const targets: string[] = [];
    let skipped = 0;
    const rate = this.#rateOf(w, now);
    for (let i = this.#firstQueued(w); i < w.executions.length; i++) {
      const e = w.executions[i]!;
      if (e.state !== 'queued') continue;
      const node = this.host.registry.get(e.node_id);
      if (!node || node.status === 'deregistered') {
        skipQueued(e, 'the node left the federation before the rollout reached it', now);
        skipped += 1;
        continue;
      }
      if (!placement.eligible(w, node) || !placement.hasRoom(node, now)) continue;
      if (!takeSlot(w, now, this.host.sweepIntervalMs, rate)) break;
      Object.assign(e, { state: 'dispatched', boot_id: node.boot_id, dispatched_at: now, updated_at: now });
      this.host.hold(w, e);
      targets.push(node.node_id);
    }
    if (targets.length + skipped > 0) w.updated_at = now;
    return { targets, skipped };
  }

  /** One trigger per MAX_TARGETS nodes (the trigger topic of one node when there is one). */
  #send(w: WpkRecord, targets: string[]): void {
    if (targets.length === 0) return;
    w.attempt = 1;
    for (let i = 0; i < targets.length; i += MAX_TARGETS) this.host.signals.trigger(w, 1, { targets: targets.slice(i, i + MAX_TARGETS) });
  }

  /** An abort criterion is met: the engine's finish skips queued targets and cancels running ones. */
  #abortIfMet(w: WpkRecord, now: number): boolean {
    const fired = firedCriterion(w);
    if (!fired) return false;
    w.aborted_by = fired;
    this.host.log.warn({ wpk_id: w.wpk_id, ...fired }, 'work package aborted: an abort criterion was met');
    this.host.finish(w, 'aborted', now, describeAbort(fired));
    return true;
  }

  /**
   * Succeeded when every execution that ran succeeded and one at least ran;
   * `skipped` ones did not run. A continuous WPK is judged only by what ran:
   * nodes away at its deadline are not held against it.
   */
  #finish(w: WpkRecord, unserved: number, now: number): void {
    if (w.executions.length === 0) return this.host.finish(w, 'expired', now, `no node with capability "${w.capability}" could take it before the deadline`);
    let skipped = 0;
    let queued = 0;
    let ok = 0;
    for (const e of w.executions) {
      if (e.state === 'skipped') skipped += 1;
      else if (e.state === 'queued') queued += 1;
      else if (e.state === 'succeeded') ok += 1;
    }
    const ran = w.executions.length - skipped - queued;
    const missed = unserved + queued;
    const parts = [`${ok} of ${ran} node(s) succeeded`];
    if (skipped > 0) parts.push(`${skipped} skipped${w.rollout ? '' : ' (offline at creation)'}`);
    if (missed > 0) parts.push(`${missed} node(s) were not reached before the deadline`);
    const success = ran > 0 && ok === ran && (missed === 0 || w.continuous);
    this.host.finish(w, success ? 'succeeded' : 'failed', now, success ? null : parts.join('; '));
  }

  #firstQueued(w: WpkRecord): number {
    let i = this.#queueStart.get(w) ?? 0;
    while (i < w.executions.length && w.executions[i]!.state !== 'queued') i++;
    this.#queueStart.set(w, i);
    return i;
  }

  /** A fixed rate as given; a ramp's recounted at most once a sweep (its steps come with successes, not by the millisecond). */
  #rateOf(w: WpkRecord, now: number): number {
    const cached = this.#rates.get(w);
    if (cached && now < cached.until) return cached.rate;
    const rate = ratePerMinute(w) ?? MAX_PER_MINUTE;
    if (w.rollout?.base_per_minute !== undefined) this.#rates.set(w, { rate, until: now + this.host.sweepIntervalMs });
    return rate;
  }

  #push(w: WpkRecord, e: ExecutionRecord): void {
    w.executions.push(e);
    this.#servedBy(w).add(e.node_id);
  }

  #servedBy(w: WpkRecord): Set<string> {
    let served = this.#served.get(w);
    if (!served) this.#served.set(w, (served = new Set(w.executions.map((e) => e.node_id))));
    return served;
  }
}
