/**
 * Storage records to API answers (lib/api.ts), field by field: the one place
 * that knows both shapes, so a record may gain, rename or drop a field while
 * docs/api.md's answers stay as they are. A field added to the API is added
 * here and to lib/api.ts, on purpose.
 */
import type { ApiExecution, ApiNode, ApiNodeList, ApiNodeState, ApiWpk, ApiWpkList } from '../../lib/api.js';
import { isInSync } from '../../hub/state/model.js';
import type { NodeStateView } from '../../hub/state/service.js';
import type { NodeRecord } from '../../hub/registry.js';
import type { ExecutionRecord, WpkRecord } from '../../hub/wpk/types.js';
import { ratePerMinute } from '../../hub/wpk/rollout.js';
import { currentSummary } from '../../hub/wpk/model.js';

export function apiNode(r: NodeRecord): ApiNode {
  return {
    id: r.id,
    node_id: r.node_id,
    endpoint: r.endpoint,
    capabilities: r.capabilities,
    labels: r.labels,
    agent: r.agent,
    hardware: r.hardware,
    heartbeat_interval_ms: r.heartbeat_interval_ms,
    max_concurrency: r.max_concurrency,
    boot_id: r.boot_id,
    registered_at: r.registered_at,
    updated_at: r.updated_at,
    status: r.status,
    status_reason: r.status_reason,
    last_seen: r.last_seen,
    load: r.load,
    running_wpks: r.running_wpks,
    registration_ts: r.registration_ts,
    state_version: r.twin?.version ?? 0,
    in_sync: isInSync(r.twin ?? null),
    state_error: r.twin?.reported_error ?? null,
    unresponsive_since: r.unresponsive_since ?? null,
  };
}

export function apiNodeState(v: NodeStateView): ApiNodeState {
  return {
    node_id: v.node_id,
    version: v.version,
    desired: v.desired,
    reported: v.reported,
    reported_version: v.reported_version,
    reported_error: v.reported_error,
    delta: v.delta,
    in_sync: v.in_sync,
    updated_at: v.updated_at,
  };
}

export function apiNodeList(records: readonly NodeRecord[], next: string | null = null): ApiNodeList {
  return { count: records.length, nodes: records.map(apiNode), next };
}

export function apiExecution(e: ExecutionRecord): ApiExecution {
  return {
    node_id: e.node_id,
    attempt: e.attempt,
    state: e.state,
    boot_id: e.boot_id,
    progress: e.progress,
    result: e.result,
    error: e.error,
    dispatched_at: e.dispatched_at,
    started_at: e.started_at,
    finished_at: e.finished_at,
    updated_at: e.updated_at,
  };
}

export function apiWpk(w: WpkRecord): ApiWpk {
  return {
    wpk_id: w.wpk_id,
    state: w.state,
    capability: w.capability,
    action: w.action,
    mode: w.mode,
    params: w.params,
    nodes: w.nodes,
    labels: w.labels,
    include_offline: w.include_offline ?? false,
    // A standby answers records as stored: one written before these fields lacks them.
    continuous: w.continuous ?? false,
    start_at: w.start_at ?? null,
    rollout: w.rollout ?? null,
    abort: w.abort ?? [],
    aborted_by: w.aborted_by ?? null,
    next_dispatch_at: w.next_dispatch_at ?? null,
    rollout_rate_per_minute: ratePerMinute(w),
    timeout_ms: w.timeout_ms,
    max_attempts: w.max_attempts,
    attempt: w.attempt,
    assignee: w.assignee,
    created_at: w.created_at,
    updated_at: w.updated_at,
    deadline: w.deadline,
    finished_at: w.finished_at,
    result: w.result,
    error: w.error,
    // Counted now: a rollout's progress (done, running, queued, failed) while it goes.
    summary: currentSummary(w),
    executions: w.executions.map(apiExecution),
  };
}

export function apiWpkList(records: readonly WpkRecord[], next: string | null = null): ApiWpkList {
  return { count: records.length, wpks: records.map(apiWpk), next };
}
