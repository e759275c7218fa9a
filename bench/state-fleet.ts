/**
 * Child process of the desired-state rollout (state-rollout.ts): N mqtt.js
 * devices that each do what the agent does for desired state: CONNECT, a
 * retained QoS 1 registration, SUBSCRIBE to their own retained `desired`
 * topic, and answer each version through the agent's own DesiredKeeper
 * (agent/desired.ts, no handler and no spool dir: the state is reported as
 * applied) with a retained QoS 1 `reported`. No heartbeats or executor: the
 * bench measures the state path, not an idle fleet.
 *
 *   parent -> child  { cmd: 'connect', url, n, prefix, inflight } | { cmd: 'stop' }
 *   child -> parent  { type: 'ready' } | { type: 'connected', errors, firstError } | { type: 'closed' }
 */
import mqtt, { type MqttClient } from 'mqtt';
import { DesiredKeeper } from '../agent/desired.js';
import { silentLogger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import type { Registration } from '../lib/wire.js';
import { bootFleet } from './poll.js';

export type StateFleetCommand = { cmd: 'connect'; url: string; n: number; prefix: string; inflight: number } | { cmd: 'stop' };
export type StateFleetReport = { type: 'ready' } | { type: 'connected'; errors: number; firstError: string | undefined } | { type: 'closed' };

export const BENCH_CAPABILITY = 'sensor';
const t = topics();
let devices: MqttClient[] = [];

function send(report: StateFleetReport): void {
  process.send?.(report);
}

async function device(url: string, id: string): Promise<MqttClient> {
  const reg: Registration = { node_id: id, capabilities: [BENCH_CAPABILITY], boot_id: `b-${id}`, ts: Date.now(), labels: { bench: 'state' } };
  const c = await mqtt.connectAsync(url, { clientId: id, reconnectPeriod: 0, keepalive: 60, log: () => undefined });
  const keeper = new DesiredKeeper({
    nodeId: id, log: silentLogger, dir: undefined, handler: undefined,
    report: (r) => { c.publish(t.reported(id), JSON.stringify(r), { qos: 1, retain: true }); },
  });
  keeper.onConnect();
  c.on('message', (_topic, payload) => keeper.onMessage(payload));
  await c.publishAsync(t.registration(id), JSON.stringify(reg), { qos: 1, retain: true });
  await c.subscribeAsync(t.desired(id), { qos: 1 });
  return c;
}

async function connect(url: string, n: number, prefix: string, inflight: number): Promise<void> {
  const { errors, firstError } = await bootFleet(n, prefix, inflight, (id) => device(url, id), devices);
  send({ type: 'connected', errors, firstError });
}

async function close(): Promise<void> {
  const all = devices;
  devices = [];
  await Promise.all(all.map((c) => c.endAsync(true)));
  send({ type: 'closed' });
}

process.on('message', (m: StateFleetCommand) => {
  if (m.cmd === 'connect') void connect(m.url, m.n, m.prefix, m.inflight);
  else if (m.cmd === 'stop') void close().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
