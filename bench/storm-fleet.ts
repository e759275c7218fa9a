/**
 * Child process of the registration storm (registration-storm.ts): N mqtt.js
 * devices, `inflight` at a time, each doing what an agent does at boot:
 * CONNECT with its Last Will (retained QoS 1 `offline/lost` on its status
 * topic), then a retained QoS 1 registration and a retained QoS 1 `online`
 * status, each awaited (PUBACK) before the slot takes the next device. The
 * devices stay connected until `close`. Or (another instance) the floor's
 * wildcard subscriber, which reports once it has seen N registrations.
 *
 *   parent -> child  { cmd: 'subscribe', url, n } | { cmd: 'storm', url, n, prefix, inflight }
 *                    { cmd: 'close' } | { cmd: 'stop' }
 *   child -> parent  { type: 'ready' } | { type: 'subscribed' } | { type: 'seen' }
 *                    { type: 'stormed', errors } | { type: 'closed' }
 */
import mqtt, { type MqttClient } from 'mqtt';
import { topics } from '../lib/topics.js';
import type { NodeStatus } from '../lib/wire.js';
import { registrationOf } from './clients.js';
import { bootFleet } from './poll.js';

export type StormCommand =
  | { cmd: 'subscribe'; url: string; n: number }
  | { cmd: 'storm'; url: string; n: number; prefix: string; inflight: number }
  | { cmd: 'close' }
  | { cmd: 'stop' };

export type StormReport =
  | { type: 'ready' }
  | { type: 'subscribed' }
  | { type: 'seen' }
  | { type: 'stormed'; errors: number; firstError: string | undefined }
  | { type: 'closed' };

const t = topics();
const quiet = { log: () => undefined };
let devices: MqttClient[] = [];
let sub: MqttClient | undefined;

function send(report: StormReport): void {
  process.send?.(report);
}

const status = (bootId: string, state: NodeStatus['state'], reason?: NodeStatus['reason']): string =>
  JSON.stringify({ state, boot_id: bootId, ts: Date.now(), ...(reason ? { reason } : {}) } satisfies NodeStatus);

async function device(url: string, id: string): Promise<MqttClient> {
  const reg = registrationOf(id);
  const will = { topic: t.status(id), payload: Buffer.from(status(reg.boot_id, 'offline', 'lost')), qos: 1 as const, retain: true };
  const c = await mqtt.connectAsync(url, { clientId: id, reconnectPeriod: 0, keepalive: 60, will, ...quiet });
  await c.publishAsync(t.registration(id), JSON.stringify(reg), { qos: 1, retain: true });
  await c.publishAsync(t.status(id), status(reg.boot_id, 'online'), { qos: 1, retain: true });
  return c;
}

async function storm(url: string, n: number, prefix: string, inflight: number): Promise<void> {
  const { errors, firstError } = await bootFleet(n, prefix, inflight, (id) => device(url, id), devices);
  send({ type: 'stormed', errors, firstError });
}

async function subscribe(url: string, n: number): Promise<void> {
  let seen = 0;
  sub = await mqtt.connectAsync(url, { clientId: `storm-sub-${process.pid}`, reconnectPeriod: 0, ...quiet });
  sub.on('message', () => {
    seen += 1;
    if (seen === n) send({ type: 'seen' });
  });
  await sub.subscribeAsync(t.allNodes('registration'), { qos: 1 });
  send({ type: 'subscribed' });
}

async function close(): Promise<void> {
  const all = sub ? [...devices, sub] : devices;
  devices = [];
  sub = undefined;
  await Promise.all(all.map((c) => c.endAsync(true)));
  send({ type: 'closed' });
}

process.on('message', (m: StormCommand) => {
  if (m.cmd === 'subscribe') void subscribe(m.url, m.n);
  else if (m.cmd === 'storm') void storm(m.url, m.n, m.prefix, m.inflight);
  else if (m.cmd === 'close') void close();
  else if (m.cmd === 'stop') void close().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
