/**
 * Work packages as the hub keeps them (the storage records). The HTTP API
 * answers them through server/http/views.ts as lib/api.ts says. Field
 * names are the wire's snake_case; times are epoch milliseconds; a field
 * that does not apply yet is null.
 */
import type { HttpAbortCriterion, HttpRollout, HttpWpkRequest } from '../../lib/wire.js';
import type { ExecutionRecordState, WpkState } from '../../lib/states.js';
import { EdgefedError, type EdgefedErrorCode } from '../../lib/errors.js';

/** The states live in lib/ so the CLI and the dashboard can use them without the hub. */
export {
  EXECUTION_RECORD_STATES, FINAL_WPK_STATES, WPK_STATES, type ExecutionRecordState, type WpkState,
} from '../../lib/states.js';

export interface ExecutionRecord {
  node_id: string;
  attempt: number;
  state: ExecutionRecordState;
  /** The node's session when it was dispatched: a node that restarted (new boot_id) lost its work. */
  boot_id: string;
  progress: number | null;
  result: Record<string, unknown> | null;
  error: string | null;
  dispatched_at: number;
  /** When the node reported `running`: its `ts`, kept between `dispatched_at` and the hub's time of receipt. */
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

export interface WpkRecord {
  wpk_id: string;
  state: WpkState;
  capability: string;
  action: string;
  mode: 'one' | 'all';
  params: Record<string, unknown>;
  /** Selector: only these nodes (null: any node of the capability). */
  nodes: string[] | null;
  /** Selector: only nodes with all these labels (null: no label rule). */
  labels: Record<string, string> | null;
  /** Mode `all`: wait for matching nodes that are offline at creation (else they are `skipped`). Records stored before it lack it: false. */
  include_offline: boolean;
  /** Mode `all`: open until the deadline; nodes that match later run it too. (Records stored before these fields: see normalizeWpk.) */
  continuous: boolean;
  /** Nothing is dispatched before this (epoch ms); null: at once. */
  start_at: number | null;
  /** Mode `all`: the pace of the rollout, as requested; null: every target at once. */
  rollout: HttpRollout | null;
  /** Mode `all`: abort criteria, as requested ([] : none). */
  abort: HttpAbortCriterion[];
  /** The criterion that aborted it, with the counts it saw. */
  aborted_by: AbortFired | null;
  /** A rollout: the earliest time of its next dispatch (null before the first). */
  next_dispatch_at: number | null;
  timeout_ms: number;
  max_attempts: number;
  /** Highest attempt number dispatched so far (0 while never dispatched). */
  attempt: number;
  /** mode one: the node running the current attempt. */
  assignee: string | null;
  created_at: number;
  updated_at: number;
  deadline: number;
  finished_at: number | null;
  /** The succeeding execution's result (mode one), or null. */
  result: Record<string, unknown> | null;
  /** Why the WPK failed, timed out, expired or was canceled. */
  error: string | null;
  /** Executions per state: what a mode-all WPK's state summarises. */
  summary: Partial<Record<ExecutionRecordState, number>>;
  executions: ExecutionRecord[];
}

/** An abort criterion that was met: the criterion, the executions that had ended and how many of them matched it. */
export interface AbortFired extends HttpAbortCriterion {
  executed: number;
  matched: number;
}

export interface WpkListFilter {
  state?: WpkState;
  capability?: string;
  limit?: number;
  /** A page's cursor: only WPKs that come after this one, newest first (it need not exist any more). */
  after?: WpkCursor;
}

/** Where a page of the WPK list ended (its last WPK): the list is newest first, in creation order. */
export interface WpkCursor { created_at: number; wpk_id: string }

/** What the engine asks the hub to publish. */
export interface Signals {
  trigger(w: WpkRecord, attempt: number, who: { assignee: string } | { targets: string[] }): void;
  cancel(nodeId: string, wpkId: string, attempt: number): void;
}

/** A refused request, mapped to an HTTP status by the API and to an exit code by the CLI. */
export class WpkRequestError extends EdgefedError {
  override readonly name = 'WpkRequestError';
  constructor(readonly status: 404 | 409 | 422, code: EdgefedErrorCode, message: string) {
    super(code, message);
  }
}

/** The hub's work-package service (`hub.wpks`), used by the HTTP API, the CLI's tests and embedders. */
export interface WorkPackages {
  /**
   * Validates the request (schema and rules: a deadline in the future...),
   * records the WPK, dispatches it when a node can take it, and resolves once
   * the record is on disk. Rejects with WpkRequestError(422) on a bad request.
   */
  create(request: HttpWpkRequest): Promise<WpkRecord>;
  get(wpkId: string): WpkRecord | undefined;
  /** Newest first. */
  list(filter?: WpkListFilter): WpkRecord[];
  /**
   * Cancels a WPK that has not finished: it ends `canceled` at once and every
   * node running it is told to stop. Rejects with WpkRequestError 404 (unknown)
   * or 409 (already finished, with its state in the message).
   */
  cancel(wpkId: string): Promise<WpkRecord>;
  /** Counts per WPK state, for /health and metrics. */
  countByState(): Record<WpkState, number>;
  /** Executions of the WPKs not finished yet, per state (a rollout's queued targets among them), for metrics. */
  countOpenExecutions(): Partial<Record<ExecutionRecordState, number>>;
  /** Executions the hub has in flight on a node (counted against its max_concurrency). */
  inFlightOn(nodeId: string): number;
}
