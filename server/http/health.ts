/**
 * `GET /health`: the public answer, built field by field. The hub's internal
 * counters can be renamed or regrouped without changing what monitoring
 * scripts read here: this file is the one place that maps them.
 */
import type { CountersSnapshot } from '../../hub/index.js';
import type { ApiBrokerHealth, ApiCounters, ApiHealth } from '../../lib/api.js';
import { VERSION } from '../../lib/version.js';
import type { BrokerView } from '../metrics/broker.js';
import { sendJson } from './respond.js';
import type { RouteHandler } from './route.js';

export const health: RouteHandler = ({ hub, live, res }) => {
  const counters = hub.counters();
  const store = hub.storeStatus();
  const answer: ApiHealth = {
    // A standby has no broker session by design: it is healthy while it reads the store.
    status: (hub.connected || live.ha?.().role === 'standby') && store.state === 'up' ? 'ok' : 'degraded',
    version: VERSION,
    auth: live.auth,
    boot_id: hub.bootId,
    uptime_s: Math.round((Date.now() - hub.startedAt) / 1000),
    broker_connected: hub.connected,
    nodes: hub.countNodesByStatus(),
    refusals_total: Object.values(counters.refusals).reduce((a, b) => a + (b ?? 0), 0),
    wpks: hub.wpks.countByState(),
    counters: publicCounters(counters),
    ...(live.ha ? { ha: live.ha() } : {}),
    store: { kind: store.kind, location: store.location, state: store.state, down_since: store.down_since, last_error: store.last_error, failures: store.failures },
    ...(live.broker ? { broker: brokerHealth(live.broker) } : {}),
  };
  sendJson(res, 200, answer);
};

/** The `counters` object of /health, as docs/api.md documents it. */
export function publicCounters(c: CountersSnapshot): ApiCounters {
  return {
    messages: { registration: c.messages.registration, status: c.messages.status, heartbeat: c.messages.heartbeat, executions: c.messages.executions },
    registrations: c.registrations,
    deregistrations: c.deregistrations,
    refusals: { ...c.refusals },
    ignored: {
      older_session: c.ignored.older_session, unknown_node: c.ignored.unknown_node, duplicate: c.ignored.duplicate,
      older_copy: c.ignored.older_copy, unknown_execution: c.ignored.unknown_execution, stale_update: c.ignored.stale_update,
    },
    wpks: {
      created: c.wpks.created, triggers: c.wpks.triggers, redispatches: c.wpks.redispatches,
      cancel_commands: c.wpks.cancel_commands, finished: { ...c.wpks.finished },
    },
    stale_transitions: c.stale_transitions,
    offline_transitions: c.offline_transitions,
    rebirths_requested: c.rebirths_requested,
    flushes: c.flushes,
    flush_errors: c.flush_errors,
    last_flush_ms: c.last_flush_ms,
  };
}

function brokerHealth({ stats, auth }: BrokerView): ApiBrokerHealth {
  return {
    connections: stats.connections ? { ...stats.connections } : null,
    clients: stats.clients,
    traffic: stats.traffic,
    packet_guard_drops: stats.packetGuardDrops,
    tls_handshake_failures: stats.tlsHandshakeFailures,
    identifier_rejected: stats.identifierRejected,
    auth: auth ?? null,
  };
}
