/**
 * The rules of a work package's life, with no I/O: building a record from a
 * request, which execution updates may move an execution, and what a WPK's
 * state says about its executions. The service decides what to publish.
 */
import { nanoid } from 'nanoid';
import type { ExecutionState, ExecutionUpdate, HttpWpkRequest } from '../../lib/wire.js';
import { checkRollout } from './rollout.js';
import {
  FINAL_WPK_STATES, WpkRequestError, type ExecutionRecord, type ExecutionRecordState, type WpkRecord, type WpkState,
} from './types.js';

export interface WpkDefaults {
  /** How long one attempt may run when the request names no `timeout_ms`. */
  timeoutMs: number;
  /** How long after creation a WPK may still start when the request names no `deadline`. */
  deadlineMs: number;
  maxAttempts: number;
}

export const DEFAULT_WPK: WpkDefaults = { timeoutMs: 10 * 60_000, deadlineMs: 60 * 60_000, maxAttempts: 3 };

export function newWpkId(): string {
  return `wpk_${nanoid(16)}`;
}

/** A start_at this far in the past is taken as "now" (the client's clock may be behind the hub's); further back it is refused. */
export const START_AT_SKEW_MS = 60_000;

/** A record for a request that passed its schema; rules the schema cannot say are checked here. */
export function newWpk(req: HttpWpkRequest, now: number, defaults: WpkDefaults = DEFAULT_WPK): WpkRecord {
  const startAt = checkStartAt(req.start_at, now);
  const deadline = req.deadline ?? (startAt ?? now) + defaults.deadlineMs;
  if (deadline <= now) {
    throw new WpkRequestError(422, 'EDGEFED_ERR_WPK_DEADLINE', `deadline ${new Date(deadline).toISOString()} is not in the future (it is absolute epoch milliseconds)`);
  }
  if (startAt !== null && startAt >= deadline) {
    throw new WpkRequestError(422, 'EDGEFED_ERR_WPK_DEADLINE', `start_at ${new Date(startAt).toISOString()} is not before the deadline ${new Date(deadline).toISOString()}; give a later deadline`);
  }
  const mode = req.mode ?? 'one';
  if (mode === 'all' && req.max_attempts !== undefined && req.max_attempts !== 1) {
    throw new WpkRequestError(422, 'EDGEFED_ERR_WPK_ATTEMPTS', 'max_attempts applies to mode "one"; in mode "all" every node runs the WPK once');
  }
  checkFanOutOnly(req, mode);
  if (req.rollout) checkRollout(req.rollout);
  return {
    wpk_id: newWpkId(),
    state: startAt !== null ? 'scheduled' : 'pending',
    capability: req.capability,
    action: req.action,
    mode,
    params: req.params ?? {},
    nodes: req.nodes ?? null,
    labels: req.labels ?? null,
    include_offline: req.include_offline ?? false,
    continuous: req.continuous ?? false,
    start_at: startAt,
    rollout: req.rollout ?? null,
    abort: req.abort ?? [],
    aborted_by: null,
    next_dispatch_at: null,
    timeout_ms: req.timeout_ms ?? defaults.timeoutMs,
    max_attempts: mode === 'all' ? 1 : req.max_attempts ?? defaults.maxAttempts,
    attempt: 0,
    assignee: null,
    created_at: now,
    updated_at: now,
    deadline,
    finished_at: null,
    result: null,
    error: null,
    summary: {},
    executions: [],
  };
}

function checkStartAt(startAt: number | undefined, now: number): number | null {
  if (startAt === undefined) return null;
  if (startAt < now - START_AT_SKEW_MS) {
    throw new WpkRequestError(422, 'EDGEFED_ERR_WPK_START', `start_at ${new Date(startAt).toISOString()} is in the past (the hub's time is ${new Date(now).toISOString()}); leave it out to start now`);
  }
  return startAt <= now ? null : startAt;
}

/** Continuous work, rollouts and abort criteria are about fleets: mode `all` only. */
function checkFanOutOnly(req: HttpWpkRequest, mode: 'one' | 'all'): void {
  if (mode === 'all') return;
  const asked = (['continuous', 'rollout', 'abort'] as const).filter((k) => req[k] !== undefined && req[k] !== false);
  if (asked.length > 0) {
    throw new WpkRequestError(422, 'EDGEFED_ERR_WPK_MODE', `${asked.join(', ')} apply to mode "all" (every matching node); send "mode": "all" or leave ${asked.length > 1 ? 'them' : 'it'} out`);
  }
}

/** Records stored before continuous work and rollouts lack their fields: the values that mean "not asked for". */
export function normalizeWpk(w: WpkRecord): WpkRecord {
  const r = w as Partial<WpkRecord> & WpkRecord;
  r.include_offline ??= false;
  r.continuous ??= false;
  r.start_at ??= null;
  r.rollout ??= null;
  r.abort ??= [];
  r.aborted_by ??= null;
  r.next_dispatch_at ??= null;
  return r;
}

export const isFinalWpk = (w: WpkRecord): boolean => FINAL_WPK_STATES.has(w.state);

/** States in which an execution holds a slot on its node. */
const IN_FLIGHT: ReadonlySet<ExecutionRecordState> = new Set(['dispatched', 'accepted', 'running']);
/** States a node reports to end an execution. */
const NODE_FINAL: ReadonlySet<ExecutionState> = new Set(['succeeded', 'failed', 'rejected', 'timed_out']);

export const isInFlight = (e: ExecutionRecord): boolean => IN_FLIGHT.has(e.state);
/** A rollout's target waiting for its turn. */
export const isQueued = (e: ExecutionRecord): boolean => e.state === 'queued';
export const isNodeFinal = (s: ExecutionRecordState): boolean => NODE_FINAL.has(s as ExecutionState);

const RANK: Record<ExecutionRecordState, number> = {
  queued: -1, dispatched: 0, accepted: 1, running: 2, succeeded: 3, failed: 3, rejected: 3, timed_out: 3, lost: 3, canceled: 3, skipped: 3,
};

/**
 * Whether a node's update may move an execution. Updates only go forward
 * (a duplicate or reordered copy changes nothing); `running` may repeat to
 * carry progress. An execution the hub gave up on (`lost`, `canceled`) still
 * takes the node's final word: what really happened is recorded, even though
 * it no longer changes the WPK.
 */
export function acceptsUpdate(current: ExecutionRecordState, next: ExecutionState): boolean {
  if (current === 'queued') return false; // never sent: the node cannot be running it
  if (current === 'lost' || current === 'canceled') return isNodeFinal(next);
  if (next === 'running' && current === 'running') return true;
  return RANK[next] > RANK[current];
}

/** Mode `all`: a node that was offline at creation, recorded as such and not waited for. */
export function skippedExecution(nodeId: string, bootId: string, now: number): ExecutionRecord {
  return {
    node_id: nodeId, attempt: 1, state: 'skipped', boot_id: bootId, progress: null, result: null,
    error: 'the node was offline when the work package was created (send include_offline: true to wait for it)',
    dispatched_at: now, started_at: null, finished_at: now, updated_at: now,
  };
}

/** A rollout's target waiting for its turn; `dispatched_at` is when it was queued until it is dispatched. */
export function queuedExecution(nodeId: string, bootId: string, now: number): ExecutionRecord {
  return {
    node_id: nodeId, attempt: 1, state: 'queued', boot_id: bootId, progress: null, result: null, error: null,
    dispatched_at: now, started_at: null, finished_at: null, updated_at: now,
  };
}

/** A queued target the rollout will not reach (aborted, canceled, past the deadline). */
export function skipQueued(e: ExecutionRecord, why: string, now: number): void {
  e.state = 'skipped';
  e.error = why;
  e.finished_at = now;
  e.updated_at = now;
}

export function newExecution(nodeId: string, bootId: string, attempt: number, now: number): ExecutionRecord {
  return {
    node_id: nodeId, attempt, state: 'dispatched', boot_id: bootId, progress: null, result: null, error: null,
    dispatched_at: now, started_at: null, finished_at: null, updated_at: now,
  };
}

/** Applies a node's update to its execution (the caller checked acceptsUpdate). */
export function applyUpdate(e: ExecutionRecord, u: ExecutionUpdate, now: number): void {
  e.state = u.state;
  e.updated_at = now;
  if (u.progress !== undefined) e.progress = u.progress;
  if (u.result !== undefined) e.result = u.result;
  if (u.error !== undefined) e.error = u.error;
  // The node's own start (a replayed `running` carries it), but on the hub's
  // clock: a node whose clock is off must not end or stretch its timeout.
  if (u.state === 'running' && e.started_at === null) e.started_at = Math.min(Math.max(u.ts, e.dispatched_at), now);
  if (isNodeFinal(u.state)) {
    e.finished_at = now;
    if (u.state === 'succeeded') e.progress = 1;
  }
}

/** The hub ends an execution itself (node lost, no accept, timeout, cancel). */
export function endExecution(e: ExecutionRecord, state: 'lost' | 'timed_out' | 'canceled', error: string, now: number): void {
  e.state = state;
  e.error = error;
  e.finished_at = now;
  e.updated_at = now;
}

/** Executions per state. */
export function executionCounts(executions: readonly ExecutionRecord[]): Partial<Record<ExecutionRecordState, number>> {
  const summary: Partial<Record<ExecutionRecordState, number>> = {};
  for (const e of executions) summary[e.state] = (summary[e.state] ?? 0) + 1;
  return summary;
}

/** The record keeps its summary as it ended; an open WPK's is counted when it is read (currentSummary). */
export function summarize(w: WpkRecord): void {
  w.summary = executionCounts(w.executions);
}

/** What the API and the dashboard show: an open WPK's executions counted now (a rollout's progress), a finished one's summary. */
export function currentSummary(w: WpkRecord): Partial<Record<ExecutionRecordState, number>> {
  return w.finished_at === null ? executionCounts(w.executions) : w.summary;
}

export function finish(w: WpkRecord, state: WpkState, now: number, error: string | null = null, result: Record<string, unknown> | null = null): void {
  w.state = state;
  w.finished_at = now;
  w.updated_at = now;
  w.error = error;
  w.result = result;
  summarize(w);
}

/**
 * While a WPK is open its state follows its executions in flight. A mode-all
 * WPK some nodes have finished is `running` while it waits for the others; a
 * mode-one WPK with no attempt in flight is `pending` (waiting for a node).
 */
export function progressState(w: WpkRecord): WpkState {
  let dispatched = false;
  for (const e of w.executions) {
    if (e.state === 'queued') continue;
    if (e.state === 'running') return 'running';
    if (e.state === 'dispatched' || e.state === 'accepted') dispatched = true;
    else if (w.mode === 'all') return 'running';
  }
  return dispatched ? 'dispatched' : 'pending';
}

export function describeEnd(e: ExecutionRecord): string {
  return `attempt ${e.attempt} on ${e.node_id} ${e.state}${e.error ? `: ${e.error}` : ''}`;
}
