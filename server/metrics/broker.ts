/** Metrics of the embedded broker (absent with an external one: scrape that broker itself). */
import type { Registry } from 'prom-client';
import type { AuthStats } from '../../broker/auth-hooks.js';
import type { BrokerStats } from '../../broker/index.js';
import { byLabel, mirrorCounter, mirrorGauge } from './mirror.js';

export interface BrokerView { stats: Readonly<BrokerStats>; auth: Readonly<AuthStats> | undefined }

export function registerBrokerMetrics(registry: Registry, view: BrokerView): void {
  const { stats, auth } = view;
  const traffic = stats.traffic;
  mirrorGauge(registry, { name: 'edgefed_broker_clients', help: 'MQTT clients connected to the embedded broker (the hub\'s own session included)', read: () => stats.clients });
  mirrorGauge(registry, { name: 'edgefed_broker_connections', help: 'TCP/TLS connections open on the embedded broker\'s listeners', read: () => stats.connections?.open });
  mirrorCounter(registry, {
    name: 'edgefed_broker_messages_total', help: 'PUBLISH packets: in = accepted from clients, out = delivered to subscribers', labelNames: ['direction'],
    read: () => [[{ direction: 'in' }, traffic.messagesIn], [{ direction: 'out' }, traffic.messagesOut]],
  });
  mirrorCounter(registry, {
    name: 'edgefed_broker_bytes_total', help: 'Bytes over every broker connection (MQTT framing included)', labelNames: ['direction'],
    read: () => [[{ direction: 'in' }, traffic.bytesIn], [{ direction: 'out' }, traffic.bytesOut]],
  });
  mirrorCounter(registry, {
    name: 'edgefed_broker_refused_connections_total', help: 'Connections cut by the broker before or during MQTT, by reason', labelNames: ['reason'],
    read: () => [
      ...(stats.connections ? byLabel('reason', stats.connections.refused) : []),
      [{ reason: 'packet_guard' }, stats.packetGuardDrops],
      [{ reason: 'tls_handshake' }, stats.tlsHandshakeFailures],
    ],
  });
  if (!auth) return;
  mirrorCounter(registry, {
    name: 'edgefed_broker_auth_refusals_total', help: 'What JWT auth refused: connects by token error, publishes and subscriptions by rule', labelNames: ['kind', 'reason'],
    read: () => [
      ...labelled('connect', auth.authFailures),
      ...labelled('publish', auth.publishRefusals),
      ...labelled('subscribe', auth.subscribeRefusals),
    ],
  });
  mirrorCounter(registry, { name: 'edgefed_broker_auth_connects_total', help: 'Connects accepted with a valid token', read: () => auth.connectsAccepted });
  mirrorCounter(registry, { name: 'edgefed_broker_sessions_expired_total', help: 'Sessions closed by the broker because their token expired', read: () => auth.sessionsExpired });
}

function labelled(kind: string, counts: Partial<Record<string, number>>): Array<[Record<string, string>, number]> {
  return Object.entries(counts).map(([reason, n]) => [{ kind, reason }, n ?? 0]);
}
