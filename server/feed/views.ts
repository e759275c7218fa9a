/**
 * What the dashboard shows of nodes and work packages: slim views of the
 * records (no params, results or executions), and the counts of its header.
 * A 5,000-node snapshot stays around a megabyte. The shapes are the feed's
 * contract in lib/api.ts; these functions are the only place that maps a
 * storage record to them.
 */
import type { HubApi } from '../../hub/index.js';
import type { NodeRecord } from '../../hub/registry.js';
import type { WpkRecord } from '../../hub/wpk/types.js';
import type { FeedNode, FeedWpk, FleetCounts } from '../../lib/api.js';
import type { NodeState } from '../../lib/states.js';
import { isInSync } from '../../hub/state/model.js';
import { currentSummary } from '../../hub/wpk/model.js';
import { ratePerMinute } from '../../hub/wpk/rollout.js';

export type { FleetCounts } from '../../lib/api.js';
export type NodeView = FeedNode;
export type WpkView = FeedWpk;

export function nodeView(r: NodeRecord, running: number): NodeView {
  return {
    node_id: r.node_id, status: r.status, status_reason: r.status_reason, capabilities: r.capabilities, labels: r.labels,
    last_seen: r.last_seen, load: r.load, running,
    state_version: r.twin?.version ?? 0, in_sync: isInSync(r.twin ?? null), state_error: r.twin?.reported_error ?? null,
    unresponsive: typeof r.unresponsive_since === 'number',
  };
}

/**
 * A node's `last_seen` is resent once it moved by this much: every heartbeat
 * of 5,000 nodes beating each second would be ~900 KB/s per page; this way a
 * page gets about N/5 nodes a second, and "last seen" is never more than
 * 5 s behind. Load is compared in tenths for the same reason.
 */
export const LAST_SEEN_GRAIN_MS = 5000;

/** What tells a changed node from an unchanged one between two ticks (a registration always moves updated_at). */
export function nodeSignature(r: NodeRecord, running: number): string {
  const seen = r.last_seen === null ? '' : Math.floor(r.last_seen / LAST_SEEN_GRAIN_MS);
  // Load moves a little with every beat (a load average): a page needs tenths, not every hundredth.
  const load = r.load === null ? '' : Math.round(r.load * 10);
  const t = r.twin;
  const state = t ? `${t.version}|${t.reported_version ?? ''}|${t.reported_at ?? ''}` : '';
  return `${r.status}|${r.status_reason ?? ''}|${seen}|${load}|${running}|${r.updated_at}|${state}|${r.unresponsive_since ?? ''}`;
}

export function wpkView(w: WpkRecord): WpkView {
  return {
    wpk_id: w.wpk_id, state: w.state, capability: w.capability, action: w.action, mode: w.mode, attempt: w.attempt,
    assignee: w.assignee, created_at: w.created_at, updated_at: w.updated_at, finished_at: w.finished_at, error: w.error,
    // An open WPK's summary is counted now: a rollout's progress while it goes.
    summary: currentSummary(w),
    start_at: w.start_at ?? null, continuous: w.continuous ?? false, rollout_rate_per_minute: ratePerMinute(w),
  };
}

export function fleetCounts(hub: HubApi): FleetCounts {
  const nodes: Record<NodeState, number> = { active: 0, stale: 0, offline: 0, deregistered: 0 };
  // A Map, not an object: capability names are the devices' words (a "__proto__" must stay a plain key).
  const capabilities = new Map<string, Record<NodeState, number>>();
  const state = { in_sync: 0, out_of_sync: 0 };
  for (const r of hub.eachNode()) {
    nodes[r.status] += 1;
    if (isInSync(r.twin ?? null)) state.in_sync += 1;
    else state.out_of_sync += 1;
    for (const c of r.capabilities) {
      let row = capabilities.get(c);
      if (!row) capabilities.set(c, (row = { active: 0, stale: 0, offline: 0, deregistered: 0 }));
      row[r.status] += 1;
    }
  }
  return { nodes, capabilities: Object.fromEntries(capabilities), wpks: hub.wpks.countByState(), state };
}
