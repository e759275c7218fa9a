/**
 * Child process of the scale benchmark (scale.ts): `count` nodes published
 * over `connections` MQTT connections, as a gateway publishes for the
 * devices behind it. One connection per node is not possible here: a
 * process (mosquitto included) may open at most 20,000 files on this
 * machine, and the hub only sees topics, not sockets. Per node it does
 * what an agent does: a retained QoS 1 registration and a retained QoS 1
 * `online` status (each PUBACKed, `inflight` at a time per connection),
 * then a QoS 0 heartbeat every `heartbeatMs`, spread evenly.
 *
 *   parent -> child  { cmd: 'storm', url, prefix, from, count, connections, inflight }
 *                    { cmd: 'beat', heartbeatMs } | { cmd: 'stop' }
 *   child -> parent  { type: 'ready' } | { type: 'stormed', errors, ms } | { type: 'beating' }
 */
import mqtt, { type MqttClient } from 'mqtt';
import { topics } from '../lib/topics.js';
import type { Heartbeat, Registration } from '../lib/wire.js';

export type ScaleCommand =
  | { cmd: 'storm'; url: string; prefix: string; from: number; count: number; connections: number; inflight: number; heartbeatMs: number }
  | { cmd: 'beat'; heartbeatMs: number }
  | { cmd: 'stop' };

export type ScaleReport =
  | { type: 'ready' }
  | { type: 'stormed'; errors: number; firstError: string | undefined; ms: number }
  | { type: 'beating' };

const t = topics();
const quiet = { log: () => undefined };
let clients: MqttClient[] = [];
let ids: string[][] = [];
let beatTimer: NodeJS.Timeout | undefined;

/** Node i's registration: every node can `monitoring`, one in ten also `camera` (the filtered list's capability). */
export function scaleRegistration(id: string, i: number, heartbeatMs: number): Registration {
  return {
    node_id: id, capabilities: ['monitoring', i % 10 === 0 ? 'camera' : 'basic-actions'], boot_id: `b-${id}`, ts: Date.now(),
    heartbeat_interval_ms: heartbeatMs, labels: { site: `s${i % 50}` },
  };
}

async function storm(c: Extract<ScaleCommand, { cmd: 'storm' }>): Promise<void> {
  const started = Date.now();
  clients = await Promise.all(Array.from({ length: c.connections }, (_, k) =>
    mqtt.connectAsync(c.url, { clientId: `${c.prefix}-gw-${c.from}-${k}`, reconnectPeriod: 0, keepalive: 120, ...quiet })));
  ids = clients.map(() => []);
  for (let i = 0; i < c.count; i += 1) ids[i % c.connections]!.push(`${c.prefix}-${c.from + i}`);
  let errors = 0;
  let firstError: string | undefined;
  await Promise.all(clients.map(async (client, k) => {
    const mine = ids[k]!;
    let next = 0;
    const slot = async (): Promise<void> => {
      while (next < mine.length) {
        const id = mine[next++]!;
        const i = Number(id.slice(id.lastIndexOf('-') + 1));
        const reg = scaleRegistration(id, i, c.heartbeatMs);
        try {
          await client.publishAsync(t.registration(id), JSON.stringify(reg), { qos: 1, retain: true });
          await client.publishAsync(t.status(id), JSON.stringify({ state: 'online', boot_id: reg.boot_id, ts: Date.now() }), { qos: 1, retain: true });
        } catch (err) {
          errors += 1;
          firstError ??= (err as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: c.inflight }, slot));
  }));
  process.send?.({ type: 'stormed', errors, firstError, ms: Date.now() - started } satisfies ScaleReport);
}

/** Every node beats once per `heartbeatMs`, in 100 ms ticks of an even share. */
function beat(heartbeatMs: number): void {
  const tickMs = 100;
  const ticks = Math.max(1, Math.round(heartbeatMs / tickMs));
  let tick = 0;
  let seq = 0;
  beatTimer = setInterval(() => {
    seq += 1;
    clients.forEach((client, k) => {
      const mine = ids[k]!;
      for (let j = tick; j < mine.length; j += ticks) {
        const hb: Heartbeat = { seq, ts: Date.now(), load: 0.2, running_wpks: 0 };
        client.publish(t.heartbeat(mine[j]!), JSON.stringify(hb), { qos: 0 });
      }
    });
    tick = (tick + 1) % ticks;
  }, tickMs);
  process.send?.({ type: 'beating' } satisfies ScaleReport);
}

process.on('message', (m: ScaleCommand) => {
  if (m.cmd === 'storm') void storm(m);
  else if (m.cmd === 'beat') beat(m.heartbeatMs);
  else if (m.cmd === 'stop') {
    clearInterval(beatTimer);
    void Promise.all(clients.map((c) => c.endAsync(true))).finally(() => process.exit(0));
  }
});
process.send?.({ type: 'ready' } satisfies ScaleReport);
