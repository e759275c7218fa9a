/**
 * The rules of a staged rollout, with no I/O: its pace (a fixed rate or an
 * exponential ramp, spread evenly rather than sent in bursts), the order in
 * which targets get their turn, and the abort criteria. The engine asks these
 * on each sweep and each execution update; the record carries all the state
 * they need, so a restarted or successor hub goes on where this one stopped.
 */
import type { HttpAbortCriterion, HttpRollout } from '../../lib/wire.js';
import type { NodeRecord } from '../registry.js';
import { compareNodeIds } from '../node-filter.js';
import { isBusy } from './placement.js';
import { WpkRequestError, type AbortFired, type ExecutionRecord, type ExecutionRecordState, type WpkRecord } from './types.js';

/** The same bound as the schema's: the sweep can spread at most this many a minute. */
export const MAX_PER_MINUTE = 60_000;

/** Rules of a rollout request the schema cannot say; a message that says what to send instead. */
export function checkRollout(r: HttpRollout): void {
  const ramp = r.base_per_minute !== undefined || r.factor !== undefined || r.every_succeeded !== undefined;
  if (ramp && (r.base_per_minute === undefined || r.factor === undefined || r.every_succeeded === undefined)) {
    throw new WpkRequestError(422, 'EDGEFED_ERR_WPK_ROLLOUT', 'rollout: a ramp needs base_per_minute, factor and every_succeeded together (e.g. {"base_per_minute":10,"factor":2,"every_succeeded":20})');
  }
  if (!ramp && r.max_per_minute === undefined) {
    throw new WpkRequestError(422, 'EDGEFED_ERR_WPK_ROLLOUT', 'rollout: give max_per_minute (a fixed rate) or base_per_minute, factor and every_succeeded (a ramp)');
  }
  if (ramp && r.max_per_minute !== undefined && r.max_per_minute < r.base_per_minute!) {
    throw new WpkRequestError(422, 'EDGEFED_ERR_WPK_ROLLOUT', `rollout: max_per_minute (${r.max_per_minute}) caps the ramp and cannot be below base_per_minute (${r.base_per_minute})`);
  }
}

const count = (w: WpkRecord, state: ExecutionRecordState): number => {
  let n = 0;
  for (const e of w.executions) if (e.state === state) n += 1;
  return n;
};

/** Dispatches per minute now: the fixed rate, or the ramp's step for the successes so far. */
export function ratePerMinute(w: WpkRecord): number | null {
  const r = w.rollout;
  if (!r) return null;
  if (r.base_per_minute === undefined) return r.max_per_minute ?? MAX_PER_MINUTE;
  const steps = Math.floor(count(w, 'succeeded') / (r.every_succeeded ?? 1));
  // factor > 1: past a few dozen steps the power only grows, so the cap settles it.
  const rate = r.base_per_minute * Math.pow(r.factor ?? 1, Math.min(steps, 1000));
  return Math.min(rate, r.max_per_minute ?? MAX_PER_MINUTE, MAX_PER_MINUTE);
}

/**
 * Takes the next dispatch slot at `rate` a minute if its time has come, moving `next_dispatch_at`
 * one interval on. A rollout that had nothing to send (no target free) does
 * not save its slots up: at most `slackMs` worth of them are due at once, so
 * an idle hour never turns into a burst.
 */
export function takeSlot(w: WpkRecord, now: number, slackMs: number, rate: number): boolean {
  const next = Math.max(w.next_dispatch_at ?? now, now - slackMs);
  if (next > now) return false;
  w.next_dispatch_at = next + 60_000 / rate;
  return true;
}

/** The documented order of a rollout's targets: by the `order_label` label's value (nodes without it last), then by node id. */
export function rolloutOrder(orderLabel: string | undefined): (a: NodeRecord, b: NodeRecord) => number {
  return (a, b) => {
    if (orderLabel !== undefined) {
      const x = a.labels[orderLabel];
      const y = b.labels[orderLabel];
      if (x !== y) {
        if (x === undefined) return 1;
        if (y === undefined) return -1;
        const c = compareNodeIds(x, y);
        if (c !== 0) return c;
      }
    }
    return compareNodeIds(a.node_id, b.node_id);
  };
}

/** Executions that ran to an end a node or the hub decided (not skipped, canceled or waiting). */
const EXECUTED: ReadonlySet<ExecutionRecordState> = new Set(['succeeded', 'failed', 'rejected', 'timed_out', 'lost']);
const UNSUCCESSFUL: ReadonlySet<ExecutionRecordState> = new Set(['failed', 'rejected', 'timed_out', 'lost']);

function matches(c: HttpAbortCriterion, e: ExecutionRecord): boolean {
  return c.on === 'any' ? UNSUCCESSFUL.has(e.state) : e.state === c.on;
}

/**
 * Whether an execution counts for the abort criteria: it ended, and not as a
 * `busy` refusal (the node had no room for it then: nothing about the work).
 */
function executed(e: ExecutionRecord): boolean {
  return EXECUTED.has(e.state) && !(e.state === 'rejected' && isBusy(e.error));
}

/** The first abort criterion that is met, with the counts it saw; null while none is. */
export function firedCriterion(w: WpkRecord): AbortFired | null {
  if (w.abort.length === 0) return null;
  const ended = w.executions.filter(executed);
  for (const c of w.abort) {
    if (ended.length < c.min_executed) continue;
    const matched = ended.filter((e) => matches(c, e)).length;
    if (matched * 100 >= c.threshold_pct * ended.length) return { ...c, executed: ended.length, matched };
  }
  return null;
}

export function describeAbort(f: AbortFired): string {
  const pct = Math.round((f.matched * 1000) / f.executed) / 10;
  const what = f.on === 'any' ? 'did not succeed' : `ended ${f.on}`;
  return `aborted: ${f.matched} of ${f.executed} executions ${what} (${pct} %), at or above the criterion's ${f.threshold_pct} % after at least ${f.min_executed}`;
}
