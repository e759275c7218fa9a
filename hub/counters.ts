/**
 * Monotonic counters of what the hub saw and refused. Plain numbers for now,
 * read by GET /health and the tests; the metrics exporter reads the same ones.
 */
import type { RefusalCode } from '../lib/wire.js';
import type { WpkState } from './wpk/types.js';

export interface WpkCounters {
  created: number;
  /** Triggers published (a mode-all trigger naming many nodes counts once). */
  triggers: number;
  /** Attempts after the first of a mode-one WPK (failover, re-routing). */
  redispatches: number;
  cancel_commands: number;
  finished: Partial<Record<WpkState, number>>;
}

/** Desired state (hub/state/). */
export interface StateCounters {
  /** Desired-state changes applied (each raised a version). */
  patches: number;
  /** `If-Match` versions that did not match (412, nothing changed). */
  precondition_failed: number;
  /** Reports for a version older than the one recorded, or newer than any desired. */
  ignored_reports: number;
  /** Retained desired states the hub published again (a broker that lost or changed them). */
  republished: number;
}

export interface HubCounters {
  messages: { registration: number; status: number; heartbeat: number; executions: number; reported: number };
  registrations: number;
  deregistrations: number;
  refusals: Partial<Record<RefusalCode, number>>;
  ignored: {
    older_session: number; unknown_node: number; duplicate: number; older_copy: number;
    /** Execution updates for a WPK or attempt the hub never dispatched. */
    unknown_execution: number;
    /** Duplicate or out-of-order execution updates (they never move an execution back). */
    stale_update: number;
  };
  wpks: WpkCounters;
  state: StateCounters;
  stale_transitions: number;
  offline_transitions: number;
  rebirths_requested: number;
  flushes: number;
  flush_errors: number;
  last_flush_ms: number;
}

export function newCounters(): HubCounters {
  return {
    messages: { registration: 0, status: 0, heartbeat: 0, executions: 0, reported: 0 },
    registrations: 0,
    deregistrations: 0,
    refusals: {},
    ignored: { older_session: 0, unknown_node: 0, duplicate: 0, older_copy: 0, unknown_execution: 0, stale_update: 0 },
    wpks: { created: 0, triggers: 0, redispatches: 0, cancel_commands: 0, finished: {} },
    state: { patches: 0, precondition_failed: 0, ignored_reports: 0, republished: 0 },
    stale_transitions: 0,
    offline_transitions: 0,
    rebirths_requested: 0,
    flushes: 0,
    flush_errors: 0,
    last_flush_ms: 0,
  };
}
