import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import * as assert from 'uvu/assert';
import { createBroker, type BrokerOptions, type EdgefedBroker } from '../../broker/index.js';
import { nextEvent } from './events.js';
import { withTimeout } from './time.js';
import type { Scope } from './scope.js';

/**
 * Broker test fixtures: each opens one handle and registers its teardown with
 * the test's Scope (see ./scope.js), so a failing test leaves nothing open.
 * Brokers listen on an ephemeral loopback port.
 */

export async function startBroker(scope: Scope, options: BrokerOptions = {}): Promise<EdgefedBroker> {
  const broker = await createBroker({ host: '127.0.0.1', port: 0, ...options });
  scope.defer(() => broker.close());
  return broker;
}

// reconnectPeriod 0: a client the broker cuts stays cut, so the test sees 'close' once.
export const NO_RECONNECT: IClientOptions = { reconnectPeriod: 0 };

export async function tcpClient(scope: Scope, broker: EdgefedBroker, options: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(broker.url!, { ...NO_RECONNECT, ...options });
  scope.defer(() => client.endAsync(true));
  return client;
}

export async function memoryClient(scope: Scope, broker: EdgefedBroker, options: IClientOptions = {}): Promise<MqttClient> {
  const client = broker.connectInMemory({ ...NO_RECONNECT, ...options });
  scope.defer(() => client.endAsync(true));
  await nextEvent(client, 'connect');
  return client;
}

export async function rawSocket(scope: Scope, port: number): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port });
  scope.defer(() => socket.destroy());
  // The broker cutting us shows up as EPIPE/ECONNRESET on our writes: expected here.
  socket.on('error', () => undefined);
  await nextEvent(socket, 'connect');
  return socket;
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

export function nextMessage(client: MqttClient, topic: string): Promise<Received> {
  return new Promise((resolve) => {
    const onMessage = (t: string, payload: Buffer, packet: { retain: boolean }) => {
      if (t !== topic) return;
      client.off('message', onMessage);
      resolve({ topic: t, payload: payload.toString(), retain: packet.retain });
    };
    client.on('message', onMessage);
  });
}

export function collectMessages(client: MqttClient): Received[] {
  const seen: Received[] = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain }));
  return seen;
}

export function closed(emitter: MqttClient | Socket): Promise<void> {
  return nextEvent(emitter, 'close').then(() => undefined);
}

/** Writes `total` bytes of zeros in chunks, honouring backpressure, until done or the socket dies. */
export async function streamZeros(socket: Socket, total: number, chunkBytes = 64 * 1024): Promise<number> {
  const chunk = Buffer.alloc(chunkBytes); // reused: the test itself must not allocate the payload
  let written = 0;
  while (written < total && !socket.destroyed) {
    const size = Math.min(chunkBytes, total - written);
    written += size;
    if (!socket.write(size === chunkBytes ? chunk : chunk.subarray(0, size))) {
      await Promise.race([nextEvent(socket, 'drain'), nextEvent(socket, 'close')]);
    }
  }
  return written;
}

export async function roundTrip(subscriber: MqttClient, publisher: MqttClient, topic: string, payload: string): Promise<void> {
  await subscriber.subscribeAsync(topic, { qos: 1 });
  const received = nextMessage(subscriber, topic);
  await publisher.publishAsync(topic, payload, { qos: 1 });
  assert.is((await received).payload, payload);
}

let markers = 0;

/**
 * Every retained message a fresh subscription to `patterns` gets, and the
 * proof that there are no more: one SUBSCRIBE carries `patterns` and then a
 * marker filter whose retained marker this client has just published. The
 * broker answers a SUBSCRIBE's retained messages filter by filter, exact
 * topics first (broker/retained-index.ts), then wildcards in the packet's
 * order (aedes-persistence), one delivery after another; the marker filter is
 * a wildcard when any pattern is one, so it comes last. Once the marker is
 * here, every retained message of `patterns` is too: this replaces "wait a
 * while and see that nothing came". The marker lives outside the topic root,
 * so the hub never sees it. Unsubscribes every filter before returning.
 */
export async function retainedNow(client: MqttClient, patterns: string | string[], { qos = 1, timeoutMs = 2000 }: { qos?: 0 | 1; timeoutMs?: number } = {}): Promise<Received[]> {
  const filters = typeof patterns === 'string' ? [patterns] : patterns;
  const id = `m${process.pid}-${(markers += 1)}`;
  const markerTopic = `edgefed-test-marker/${id}/m`;
  const markerFilter = filters.some((f) => /[+#]/.test(f)) ? `edgefed-test-marker/${id}/#` : markerTopic;
  await client.publishAsync(markerTopic, id, { qos: 1, retain: true });
  const seen: Received[] = [];
  // A pattern such as '#' matches the marker too: it then comes once more for each.
  let markersDue = 1 + filters.filter((f) => topicMatches(f, markerTopic)).length;
  let onMessage: ((t: string, payload: Buffer, packet: { retain: boolean }) => void) | undefined;
  const markerSeen = new Promise<void>((resolve) => {
    onMessage = (t, payload, packet) => {
      // Only a retained copy counts: the broker may still be forwarding the marker live as we subscribe.
      if (t === markerTopic) return void (packet.retain && (markersDue -= 1) === 0 && resolve());
      if (!t.startsWith('edgefed-test-marker/')) seen.push({ topic: t, payload: payload.toString(), retain: packet.retain });
    };
    client.on('message', onMessage);
  });
  try {
    await withTimeout(client.subscribeAsync([...filters, markerFilter], { qos }), timeoutMs, `subscribe ${filters.join(' ')}`);
    await withTimeout(markerSeen, timeoutMs, `retained marker after ${filters.join(' ')}`);
  } finally {
    client.off('message', onMessage!);
  }
  await client.publishAsync(markerTopic, '', { qos: 1, retain: true });
  await client.unsubscribeAsync([...filters, markerFilter]);
  return seen;
}

/** MQTT topic filter matching [MQTT-4.7]: `+` one level, `#` the rest. */
function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i += 1) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
