/**
 * A node's desired and reported state as the hub keeps it (issue 16): part of
 * the node record, so every store persists it with the record (lowdb files,
 * PostgreSQL's record column) and it survives a restart without a table of
 * its own. Pure functions only: the service (service.ts) does the I/O.
 */
import { stateDelta, type StateObject } from '../../lib/desired-state.js';
import type { DesiredState } from '../../lib/wire.js';

export interface NodeTwin {
  /** Raised by one with every change of `desired`; 0 before any. */
  version: number;
  desired: StateObject;
  /** When `version` was set (epoch ms): the `ts` of the retained desired message. */
  desired_at: number;
  /** What the node last reported, null before its first report. */
  reported: StateObject | null;
  /** The desired version that report answers. */
  reported_version: number | null;
  reported_at: number | null;
  /** The node failed to apply `reported_version`: its reason. */
  reported_error: string | null;
  /**
   * Whether the node is in sync, worked out when the twin changes (withSync)
   * so the feed's tick and a metrics scrape need not compare thousands of
   * states; absent in records written before it existed.
   */
  in_sync?: boolean;
}

export function emptyTwin(now: number): NodeTwin {
  return { version: 0, desired: {}, desired_at: now, reported: null, reported_version: null, reported_at: null, reported_error: null };
}

/** The desired keys whose reported value differs (nested objects compared deeply). */
export function twinDelta(twin: NodeTwin | null): StateObject {
  return twin ? stateDelta(twin.desired, twin.reported) : {};
}

/**
 * In sync: the node reported the current version without an error and
 * nothing it reports differs from what is desired. A node nobody set a
 * desired state for is in sync.
 */
export function isInSync(twin: NodeTwin | null): boolean {
  if (twin && typeof twin.in_sync === 'boolean') return twin.in_sync;
  return computeInSync(twin);
}

/** The twin with its `in_sync` worked out afresh. */
export function withSync(twin: NodeTwin): NodeTwin {
  const { in_sync: _stale, ...rest } = twin;
  return { ...rest, in_sync: computeInSync(rest) };
}

function computeInSync(twin: NodeTwin | null): boolean {
  if (!twin || twin.version === 0) return true;
  if (twin.reported_version !== twin.version || twin.reported_error !== null) return false;
  return Object.keys(twinDelta(twin)).length === 0;
}

/** The retained message that carries a twin's desired state. */
export function desiredMessage(twin: NodeTwin): DesiredState {
  return { version: twin.version, state: twin.desired, ts: twin.desired_at };
}
