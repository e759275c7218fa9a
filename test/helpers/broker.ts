import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import * as assert from 'uvu/assert';
import { createBroker, type BrokerOptions, type EdgefedBroker } from '../../broker/index.js';
import { nextEvent } from './events.js';
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
