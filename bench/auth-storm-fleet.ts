/**
 * Child process of the auth-storm benchmark (bench/auth-storm.ts): MQTT
 * clients (no agent: registration is not part of this measure) that connect
 * to the parent's broker over loopback TCP, each with its own node id as
 * client id and username and its own JWT as password. Driven over IPC:
 *
 *   parent -> child  { cmd: 'storm', port, ids, tokens, concurrency, client, timeoutMs }
 *                    { cmd: 'publish' } | { cmd: 'close' } | { cmd: 'stop' }
 *   child -> parent  { type: 'ready' } | { type: 'storm', ... } | { type: 'published', ... }
 *                    | { type: 'closed', ... }
 *
 * A storm opens N connections with at most `concurrency` CONNECTs in flight
 * (a new one starts when a CONNACK, or a failure, frees a slot), so what is
 * measured is the broker's connect path, not the kernel's accept backlog. Its
 * time runs from the first CONNECT handed to its socket (written as soon as
 * the socket is made; the kernel sends it once TCP is up) until the N-th
 * CONNACK arrived. Times are `performance.timeOrigin + performance.now()`,
 * the parent's clock too. Sockets as the agent's transport opens them
 * (TCP_NODELAY on).
 *
 * Two kinds of client, the same packets on the wire (MQTT 3.1.1, clean
 * session, keepalive 60 s, username + password):
 *  - `mqtt`: plain mqtt.js clients (`MqttClient` over `net.connect`);
 *  - `raw`: a socket that writes a hand-encoded CONNECT and reads the 4-byte
 *    CONNACK, about half of mqtt.js's CPU per connect. On this 2-core box
 *    the fleet shares the machine with the broker (a real fleet is remote),
 *    so the lighter the client the more the storm measures the broker.
 */
import net from 'node:net';
import { MqttClient } from 'mqtt';
import { topics } from '../lib/topics.js';
// The same hand-made packets as the hostile-client tests.
import { connectFrame, publishFrame } from '../test/helpers/mqtt-bytes.js';

const epochNow = (): number => performance.timeOrigin + performance.now();
const t = topics();

export type ClientKind = 'mqtt' | 'raw';

export type AuthFleetCommand =
  | { cmd: 'storm'; host: string; port: number; ids: string[]; tokens: string[]; concurrency: number; client: ClientKind; timeoutMs: number }
  | { cmd: 'publish' }
  | { cmd: 'close' }
  | { cmd: 'stop' };

export type AuthFleetReport =
  | { type: 'ready' }
  | {
    type: 'storm';
    /** First CONNECT handed to its socket / N-th CONNACK (or last failure), epoch ms. */
    firstConnectAt: number; lastConnackAt: number;
    connected: number; failed: number;
    /** Up to 5 failure messages (CONNACK refusals, socket errors), for the parent's error. */
    failures: string[];
    /** This process's CPU over the storm (user + system), ms. */
    cpuMs: number;
  }
  | { type: 'published'; firstAt: number; lastAt: number; sent: number }
  | { type: 'closed'; closed: number };

interface StormClient {
  readonly id: string;
  readonly connected: boolean;
  /** One QoS 0 PUBLISH. */
  publish(topic: string, payload: string): void;
  /** DISCONNECT and close; resolves when the socket is closed. */
  close(): Promise<void>;
}

type Settle = (err?: string) => void;

function mqttClient(host: string, port: number, id: string, token: string, timeoutMs: number, settle: Settle): StormClient {
  const client = new MqttClient(() => net.connect({ host, port, noDelay: true }), {
    clientId: id, username: id, password: token, protocolVersion: 4, clean: true,
    keepalive: 60, reconnectPeriod: 0, connectTimeout: timeoutMs,
  });
  client.once('connect', () => settle());
  client.once('error', (err) => settle(err.message));
  client.once('close', () => settle('closed before CONNACK'));
  return {
    id,
    get connected() { return client.connected; },
    publish: (topic, payload) => { client.publish(topic, payload, { qos: 0 }); },
    close: () => client.endAsync(true).catch(() => undefined),
  };
}

const DISCONNECT = Buffer.from([0xe0, 0x00]);

function rawClient(host: string, port: number, id: string, token: string, timeoutMs: number, settle: Settle): StormClient {
  const sock = net.connect({ host, port, noDelay: true });
  let connected = false;
  let buf: Buffer = Buffer.alloc(0);
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  const timer = setTimeout(() => { settle(`no CONNACK within ${timeoutMs} ms`); sock.destroy(); }, timeoutMs);
  sock.write(connectFrame(id, { username: id, password: token }));
  sock.on('data', (chunk: Buffer) => {
    if (connected) return; // nothing else is expected: no subscriptions, QoS 0 only
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    if (buf.length < 4) return;
    clearTimeout(timer);
    if (buf[0] !== 0x20 || buf[1] !== 0x02) { settle(`not a CONNACK: ${buf.subarray(0, 4).toString('hex')}`); sock.destroy(); return; }
    if (buf[3] !== 0) { settle(`CONNACK return code ${buf[3]}`); sock.destroy(); return; }
    connected = true;
    settle();
  });
  sock.on('error', (err) => settle(err.message));
  sock.once('close', () => { clearTimeout(timer); connected = false; settle('closed before CONNACK'); });
  return {
    id,
    get connected() { return connected; },
    publish: (topic, payload) => { sock.write(publishFrame(topic, Buffer.from(payload, 'utf8'))); },
    close: () => {
      if (!sock.destroyed) sock.end(DISCONNECT);
      // Bounded: a peer that never closes its side is cut.
      const cut = setTimeout(() => sock.destroy(), 5000);
      return closed.then(() => clearTimeout(cut));
    },
  };
}

let clients: StormClient[] = [];

function send(m: AuthFleetReport): void {
  process.send?.(m);
}

async function storm(c: Extract<AuthFleetCommand, { cmd: 'storm' }>): Promise<void> {
  const n = c.ids.length;
  clients = new Array<StormClient>(n);
  let firstConnectAt = Number.POSITIVE_INFINITY;
  let lastConnackAt = 0;
  let connected = 0;
  const failures: string[] = [];
  const make = c.client === 'raw' ? rawClient : mqttClient;
  const cpu0 = process.cpuUsage();

  const connectOne = (i: number): Promise<void> => new Promise((resolve) => {
    let settled = false;
    const settle: Settle = (err) => {
      if (settled) return;
      settled = true;
      lastConnackAt = epochNow();
      if (err === undefined) connected += 1;
      else failures.push(`${c.ids[i]}: ${err}`);
      resolve();
    };
    // Both kinds write the CONNECT as the socket is made (mqtt.js from its constructor).
    const at = epochNow();
    if (at < firstConnectAt) firstConnectAt = at;
    clients[i] = make(c.host, c.port, c.ids[i]!, c.tokens[i]!, c.timeoutMs, settle);
  });

  let next = 0;
  async function worker(): Promise<void> {
    while (next < n) await connectOne(next++);
  }
  const all = Promise.all(Array.from({ length: Math.min(c.concurrency, n) }, worker));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((r) => { timer = setTimeout(r, c.timeoutMs); });
  await Promise.race([all, timeout]);
  clearTimeout(timer);
  const cpu = process.cpuUsage(cpu0);
  const failed = n - connected;
  if (failures.length === 0 && failed > 0) failures.push(`${failed} not connected within ${c.timeoutMs} ms`);
  send({ type: 'storm', firstConnectAt, lastConnackAt, connected, failed, failures: failures.slice(0, 5), cpuMs: (cpu.user + cpu.system) / 1000 });
}

/** Each connected client publishes one heartbeat of its own, QoS 0 as the agent does (lib/wire.ts). */
function publish(): void {
  let firstAt = Number.POSITIVE_INFINITY;
  let lastAt = 0;
  let sent = 0;
  for (const client of clients) {
    if (!client?.connected) continue;
    const at = epochNow();
    if (at < firstAt) firstAt = at;
    client.publish(t.heartbeat(client.id), JSON.stringify({ seq: 1, ts: Date.now() }));
    lastAt = epochNow();
    sent += 1;
  }
  send({ type: 'published', firstAt, lastAt, sent });
}

async function close(): Promise<void> {
  const all = clients.filter(Boolean);
  await Promise.all(all.map((c) => c.close()));
  clients = [];
  send({ type: 'closed', closed: all.length });
}

process.on('message', (m: AuthFleetCommand) => {
  if (m.cmd === 'storm') void storm(m);
  else if (m.cmd === 'publish') publish();
  else if (m.cmd === 'close') void close();
  else if (m.cmd === 'stop') {
    for (const c of clients) void c?.close();
    process.disconnect?.();
    setTimeout(() => process.exit(0), 2000).unref();
  }
});
// The parent went away without saying so: do not outlive it.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
