/**
 * A stage for hostile-client tests: a whole federation (broker in memory, hub
 * on an in-memory registry) behind a TCP listener of our own that calls the
 * connection gate before `broker.handle(socket)`, the way the broker's
 * listeners are to be wired. A registered good node keeps a publish/subscribe
 * round trip going over TCP from another loopback address (127.0.0.2), so
 * per-address limits on 127.0.0.1 leave it alone.
 */
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { MqttClient, type IClientOptions } from 'mqtt';
import * as assert from 'uvu/assert';
import type { BrokerOptions, EdgefedBroker } from '../../broker/index.js';
import { createConnectionGate, type ConnectionGate, type ConnectionGateOptions } from '../../broker/conn-limits.js';
import type { Federation } from '../../server/federation.js';
import { retainedNow } from './broker.js';
import { nextEvent } from './events.js';
import { federation, registration } from './federation.js';
import { capturingLogger, type LogLine } from './logs.js';
import type { Scope } from './scope.js';
import { sleep, waitFor, withTimeout } from './time.js';

export const GOOD_NODE = 'good-1';
export const GOOD_ADDRESS = '127.0.0.2';
const ECHO_TOPIC = `test/echo/${GOOD_NODE}`;

export interface HostileStage {
  fed: Federation;
  broker: EdgefedBroker;
  gate: ConnectionGate;
  /** Port of the gated listener on 127.0.0.1. */
  port: number;
  /** Every log line of broker, hub and gate. */
  lines: LogLine[];
  good: MqttClient;
  /** The registry as JSON, to show that nothing in it changed. */
  registrySnapshot(): string;
  /** The retained registration of the good node as a fresh subscriber sees it. */
  retainedRegistration(): Promise<string[]>;
}

export interface StageOptions {
  gate?: ConnectionGateOptions;
  broker?: Partial<BrokerOptions>;
}

export async function hostileStage(scope: Scope, options: StageOptions = {}): Promise<HostileStage> {
  const lines: LogLine[] = [];
  const log = capturingLogger(lines);
  const fed = await federation({ logger: log, ...(options.broker ? { broker: options.broker } : {}) });
  scope.defer(() => fed.stop());
  const broker = fed.broker!;
  const gate = createConnectionGate(options.gate ?? {}, log.child({ component: 'broker' }));
  scope.defer(() => gate.close());
  const listener = await gatedListener(gate, broker);
  scope.defer(() => listener.close());
  const port = listener.port;

  const good = await goodClient(scope, port);
  await registerGoodNode(fed, good);
  return {
    fed,
    broker,
    gate,
    port,
    lines,
    good,
    registrySnapshot: () => JSON.stringify([...fed.hub.eachNode()]),
    retainedRegistration: () => retainedOn(scope, port, fed.hub.topics.registration(GOOD_NODE)),
  };
}

/** What broker/tcp-listener.ts is to do with a gate: admit first, serve only what was admitted. */
async function gatedListener(gate: ConnectionGate, broker: EdgefedBroker): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (!gate.admit(socket)) return;
    broker.handle(socket);
  });
  // A burst of 500 connects must not overflow the accept queue into SYN retries.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 2048 }, () => resolve());
  });
  return { port: (server.address() as AddressInfo).port, close: () => closeListener(server, sockets) };
}

function closeListener(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of sockets) socket.destroy();
  });
}

/** An mqtt.js client over TCP from `localAddress` (mqtt.js's own TCP builder cannot choose it). */
export async function tcpClientFrom(scope: Scope, port: number, localAddress: string, options: IClientOptions): Promise<MqttClient> {
  const client = new MqttClient(() => netConnect({ host: '127.0.0.1', port, localAddress, noDelay: true }), {
    reconnectPeriod: 0,
    ...options,
  });
  scope.defer(() => client.endAsync(true));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error(`${options.clientId ?? 'client'} closed before CONNACK`)));
    }),
    3000,
    `connect ${options.clientId ?? 'client'}`,
  );
  return client;
}

async function goodClient(scope: Scope, port: number): Promise<MqttClient> {
  const good = await tcpClientFrom(scope, port, GOOD_ADDRESS, { clientId: GOOD_NODE, keepalive: 5 });
  await good.subscribeAsync(ECHO_TOPIC, { qos: 1 });
  return good;
}

async function registerGoodNode(fed: Federation, good: MqttClient): Promise<void> {
  const reg = registration(GOOD_NODE);
  await good.publishAsync(fed.hub.topics.registration(GOOD_NODE), JSON.stringify(reg), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node(GOOD_NODE)?.status === 'active', { label: 'good node registered' });
}

async function retainedOn(scope: Scope, port: number, topic: string): Promise<string[]> {
  const late = await tcpClientFrom(scope, port, GOOD_ADDRESS, { clientId: `late-${Date.now()}` });
  const seen = await retainedNow(late, topic);
  await late.endAsync(true);
  return seen.map((m) => m.payload);
}

let echoes = 0;

/** One QoS 1 publish/subscribe round trip of the good node, bounded. */
export async function goodRoundTrip(good: MqttClient): Promise<void> {
  const payload = `echo-${(echoes += 1)}`;
  const received = new Promise<void>((resolve) => {
    const onMessage = (topic: string, body: Buffer) => {
      if (topic !== ECHO_TOPIC || body.toString() !== payload) return;
      good.off('message', onMessage);
      resolve();
    };
    good.on('message', onMessage);
  });
  await withTimeout(Promise.all([good.publishAsync(ECHO_TOPIC, payload, { qos: 1 }), received]), 2000, `round trip ${payload}`);
}

export interface Service {
  /** Stops the loop; resolves with the number of round trips, or rejects with the first failure. */
  stop(): Promise<number>;
}

/** Round trips one after another (20 ms apart) until stopped: the broker serving a good client meanwhile. */
export function keepServing(good: MqttClient): Service {
  let running = true;
  let done = 0;
  const loop = (async () => {
    while (running) {
      await goodRoundTrip(good);
      done += 1;
      await sleep(20);
    }
  })();
  // Observed by stop(); without this an early failure would be an unhandled rejection.
  loop.catch(() => undefined);
  return {
    async stop() {
      running = false;
      await loop;
      return done;
    },
  };
}

/** `address:port` of our end of each raw socket, as the broker logs its peer; a closed socket forgets its port. */
const peerLabels = new WeakMap<Socket, string>();

/**
 * A raw TCP socket to the gated listener, closed with the test. Errors
 * (ECONNRESET, EPIPE) are expected. It reads and drops what the broker sends:
 * a socket with unread bytes (a CONNACK) never sees the broker's FIN, so it
 * would never 'close'. Listen for 'data' to see those bytes.
 */
export function rawSocket(scope: Scope, port: number, localAddress = '127.0.0.1'): Socket {
  const socket = netConnect({ host: '127.0.0.1', port, localAddress });
  scope.defer(() => socket.destroy());
  socket.on('error', () => undefined);
  socket.resume();
  socket.once('connect', () => peerLabels.set(socket, `${socket.localAddress}:${socket.localPort}`));
  return socket;
}

/** How the broker names this socket in its log lines (`remote`); undefined if it never connected. */
export function peerLabel(socket: Socket): string | undefined {
  return peerLabels.get(socket);
}

export function closedWithin(socket: Socket, ms: number, label: string): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return withTimeout(nextEvent(socket, 'close'), ms, label).then(() => undefined);
}

/** Asserts the broker still serves the good node, and the registry and its retained registration are as before. */
export async function assertUntouched(stage: HostileStage, registryBefore: string, retainedBefore: string[]): Promise<void> {
  await goodRoundTrip(stage.good);
  assert.is(stage.registrySnapshot(), registryBefore, 'registry unchanged');
  assert.equal(await stage.retainedRegistration(), retainedBefore, 'retained registration unchanged');
}
