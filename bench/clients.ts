/** Plain MQTT devices for benchmarks: N TCP connections opened with bounded concurrency. */
import mqtt, { type MqttClient } from 'mqtt';
import { topics } from '../lib/topics.js';
import type { Registration } from '../lib/wire.js';

const t = topics();

export async function connectMany(url: string, n: number, prefix: string, concurrency = 100): Promise<MqttClient[]> {
  const clients: MqttClient[] = new Array<MqttClient>(n);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < n) {
      const i = next++;
      clients[i] = await mqtt.connectAsync(url, { clientId: `${prefix}-${i}`, reconnectPeriod: 0, keepalive: 60 });
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return clients;
}

export function registrationOf(nodeId: string): Registration {
  return { node_id: nodeId, capabilities: ['monitoring', 'basic-actions'], boot_id: `b-${nodeId}`, ts: Date.now(), heartbeat_interval_ms: 60_000, labels: { bench: 'storm' } };
}

/** Every client publishes its own retained registration (QoS 1). */
export function publishRegistrations(clients: MqttClient[], prefix: string): void {
  clients.forEach((c, i) => {
    const id = `${prefix}-${i}`;
    c.publish(t.registration(id), JSON.stringify(registrationOf(id)), { qos: 1, retain: true });
  });
}

export async function closeMany(clients: MqttClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.endAsync(true)));
}
