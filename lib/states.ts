/**
 * The states the hub reports for nodes, work packages and executions: part
 * of the HTTP contract (lib/api.ts) and of the hub's model alike, so the CLI
 * and the dashboard can check a `--status` or `--state` without importing
 * the hub. No dependencies.
 */
import type { ExecutionState } from './wire.js';

export type NodeState = 'active' | 'stale' | 'offline' | 'deregistered';
export const NODE_STATES: readonly NodeState[] = ['active', 'stale', 'offline', 'deregistered'];

/**
 * `scheduled`: waiting for its `start_at`; `aborted`: a rollout's abort
 * criterion fired (mode `all`). The others as docs/protocol.md says.
 */
export type WpkState = 'scheduled' | 'pending' | 'dispatched' | 'running' | 'succeeded' | 'failed' | 'timed_out' | 'canceled' | 'expired' | 'aborted';
export const WPK_STATES: readonly WpkState[] = ['scheduled', 'pending', 'dispatched', 'running', 'succeeded', 'failed', 'timed_out', 'canceled', 'expired', 'aborted'];
export const FINAL_WPK_STATES: ReadonlySet<WpkState> = new Set(['succeeded', 'failed', 'timed_out', 'canceled', 'expired', 'aborted']);

/**
 * An execution as the hub records it: the node's own states (`accepted` ...
 * `timed_out`) plus the hub's: `dispatched` (trigger sent, not accepted yet),
 * `lost` (the node went away or never accepted), `canceled` (the WPK was
 * canceled while this execution was in flight), `queued` (a rollout's target
 * waiting for its turn) and `skipped` (mode `all`: the node was offline when
 * the WPK was created, or the rollout ended before it reached the node).
 */
export type ExecutionRecordState = ExecutionState | 'queued' | 'dispatched' | 'lost' | 'canceled' | 'skipped';
export const EXECUTION_RECORD_STATES: readonly ExecutionRecordState[] = [
  'queued', 'dispatched', 'accepted', 'running', 'succeeded', 'failed', 'rejected', 'timed_out', 'lost', 'canceled', 'skipped',
];
