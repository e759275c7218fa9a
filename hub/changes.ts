/**
 * The one place where a registry change becomes its consequences: the store's
 * journal (what the next flush writes), the counters, one log line, the WPK
 * service's notice (work may move) and the hub's events. Whatever a change
 * came through (MQTT, HTTP, the liveness sweep), it ends here, so none of
 * these is written by hand in a handler.
 */
import type { Logger } from '../lib/log.js';
import type { HubCounters } from './counters.js';
import type { NodeJournal } from './journal.js';
import type { HubObservers } from './observe.js';
import type { NodeChange } from './registry.js';

export interface ChangeSinkDeps {
  journal: NodeJournal;
  counters: HubCounters;
  log: Logger;
  events: HubObservers;
  /** The WPK service: a node's status, session or description changed. */
  nodeChanged(nodeId: string): void;
  /** A node left the registry for good (its retained desired/reported topics are cleared). */
  forgotten?(nodeId: string): void;
}

export function createChangeSink(deps: ChangeSinkDeps): (change: NodeChange) => void {
  return function onNodeChange(change: NodeChange): void {
    record(deps, change);
    count(deps.counters, change);
    describe(deps.log, change);
    if (change.kind === 'liveness') return;
    const nodeId = change.kind === 'forgotten' ? change.nodeId : change.record.node_id;
    deps.events.nodeChanged.emit(nodeId);
    if (change.kind === 'forgotten') deps.forgotten?.(nodeId);
    // A removed node's work is given up as if it were lost (the WPK service finds no record).
    if (change.kind !== 'state') deps.nodeChanged(nodeId);
  };
}

function record({ journal }: ChangeSinkDeps, change: NodeChange): void {
  switch (change.kind) {
    case 'liveness': return journal.liveness(change.record.node_id);
    case 'forgotten': return journal.removed(change.nodeId);
    default: return journal.upserted(change.record.node_id);
  }
}

function count(c: HubCounters, change: NodeChange): void {
  switch (change.kind) {
    case 'registered': c.registrations += 1; return;
    case 'deregistered': c.deregistrations += 1; return;
    case 'stale': c.stale_transitions += 1; return;
    case 'status': if (change.record.status === 'offline') c.offline_transitions += 1; return;
    default: return;
  }
}

function describe(log: Logger, change: NodeChange): void {
  switch (change.kind) {
    case 'registered': {
      const r = change.record;
      log.info({ node_id: r.node_id, outcome: change.outcome, status: r.status, boot_id: r.boot_id, capabilities: r.capabilities, live: change.live }, 'node registered');
      return;
    }
    case 'deregistered': log.info({ node_id: change.record.node_id }, 'node deregistered'); return;
    case 'status': log.info({ node_id: change.record.node_id, status: change.record.status, reason: change.record.status_reason, live: change.live }, 'node status'); return;
    case 'alive': log.info({ node_id: change.record.node_id }, 'node active again'); return;
    case 'stale': log.info({ node_id: change.record.node_id, last_seen: change.record.last_seen }, 'node stale (missed heartbeats)'); return;
    case 'forgotten': log.info({ node_id: change.nodeId, why: change.why }, change.why === 'removed' ? 'node removed' : 'forgot a node gone past its retention'); return;
    case 'state': {
      const t = change.record.twin;
      log.info({ node_id: change.record.node_id, version: t?.version, reported_version: t?.reported_version, error: t?.reported_error ?? undefined }, 'node state changed');
      return;
    }
    case 'unresponsive': {
      const r = change.record;
      if (typeof r.unresponsive_since === 'number') log.warn({ node_id: r.node_id }, 'node let a trigger time out unaccepted: no new work for it until it shows life');
      else log.info({ node_id: r.node_id }, 'node responsive again');
      return;
    }
    case 'liveness': return;
  }
}
