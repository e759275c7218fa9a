/**
 * A whole federation in one test: the embedded broker without a socket, the
 * hub on an in-memory registry (or a real data dir) and its HTTP API on an
 * ephemeral loopback port. Plus an MQTT "device" client and a message
 * collector, so tests drive it the way a device or operator would.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { startFederation, type Federation, type FederationOptions } from '../../server/federation.js';
import { memoryAdapter } from '../../hub/store/registry-file.js';
import { silentLogger } from '../../lib/log.js';
import { withTimeout } from './time.js';

export async function federation(opts: Partial<FederationOptions> = {}): Promise<Federation> {
  return startFederation({
    mqttListen: false,
    mqttPort: 0,
    httpPort: 0,
    logger: silentLogger,
    ...(opts.dataDir === undefined && opts.adapter === undefined ? { adapter: memoryAdapter() } : {}),
    ...opts,
    hub: { sweepIntervalMs: 50, resync: { settleMs: 100, maxWaitMs: 1000 }, ...opts.hub },
  });
}

/** A plain MQTT device (not our agent): connects in memory, or over TCP when `url` is given. */
export async function device(fed: Federation, clientId: string, opts: IClientOptions = {}, url?: string): Promise<MqttClient> {
  const options: IClientOptions = { clientId, reconnectPeriod: 0, ...opts };
  const client = url ? mqtt.connect(url, options) : fed.broker!.connectInMemory(options);
  await withTimeout(new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  }), 3000, `connect ${clientId}`);
  return client;
}

export interface Received { topic: string; payload: string; retain: boolean }

/** Subscribes and records every message, for assertions on what operators would see. */
export async function collector(client: MqttClient, pattern: string): Promise<Received[]> {
  const seen: Received[] = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await withTimeout(client.subscribeAsync(pattern, { qos: 1 }), 3000, `subscribe ${pattern}`);
  return seen;
}

export async function closeAll(...clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(clients.map((c) => (c ? withTimeout(c.endAsync(true), 3000, 'client end').catch(() => undefined) : undefined)));
}

export function registration(nodeId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { node_id: nodeId, capabilities: ['monitoring'], boot_id: `boot-${nodeId}`, ts: Date.now(), ...extra };
}

export async function api<T = unknown>(fed: Federation, path: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await withTimeout(fetch(`${fed.api.url}${path}`, init), 3000, `HTTP ${path}`);
  return { status: res.status, body: (await res.json()) as T };
}

export function post(body: unknown): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) };
}
