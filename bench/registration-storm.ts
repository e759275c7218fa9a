/**
 * registration-storm: N devices connect over TCP, then all publish their
 * retained registration at once. Measured from the first publish until
 *  - edgefed: all N are in the hub registry AND written to registry.json;
 *  - floor: a bare Aedes broker's single wildcard subscriber has seen all N.
 * Both in the same run, alternating, so the ratio is not skewed by machine noise.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { startFederation } from '../server/federation.js';
import { silentLogger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import { closeMany, connectMany, publishRegistrations } from './clients.js';
import { startProfile } from './profile.js';
import { median, round } from './stats.js';

const t = topics();

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('benchmark condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function bareBroker(n: number): Promise<number> {
  const aedes = await Aedes.createBroker();
  const server = net.createServer(aedes.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sub = await mqtt.connectAsync(url, { clientId: 'floor-sub' });
  let seen = 0;
  sub.on('message', () => { seen += 1; });
  await sub.subscribeAsync(t.allNodes('registration'), { qos: 1 });
  const clients = await connectMany(url, n, 'floor');
  const started = performance.now();
  publishRegistrations(clients, 'floor');
  await waitUntil(() => seen >= n, 120_000);
  const took = performance.now() - started;
  await closeMany([...clients, sub]);
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => aedes.close(() => r()));
  return took;
}

async function edgefed(n: number): Promise<{ ms: number; bytes: number }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-bench-'));
  const fed = await startFederation({ mqttPort: 0, httpPort: 0, dataDir: dir, logger: silentLogger });
  const clients = await connectMany(fed.mqttUrl!, n, 'storm');
  const profile = await startProfile(process.env.BENCH_PROFILE);
  const started = performance.now();
  publishRegistrations(clients, 'storm');
  await waitUntil(() => fed.hub.nodes().length >= n, 120_000);
  await fed.hub.flush(); // "in the registry and flushed to disk"
  const took = performance.now() - started;
  await profile.stop();
  const bytes = (await fs.stat(path.join(dir, 'registry.json'))).size;
  await closeMany(clients);
  await fed.stop();
  await fs.rm(dir, { recursive: true, force: true });
  return { ms: took, bytes };
}

export async function registrationStorm(n: number, runs: number): Promise<Record<string, number | number[]>> {
  const floor: number[] = [];
  const ours: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i += 1) {
    floor.push(await bareBroker(n));
    const r = await edgefed(n);
    ours.push(r.ms);
    bytes = r.bytes;
  }
  const f = median(floor);
  const o = median(ours);
  return {
    nodes: n, runs, bare_aedes_median_ms: round(f), edgefed_median_ms: round(o), ratio: round(o / f, 2), registry_bytes: bytes,
    bare_aedes_runs_ms: floor.map((v) => round(v)), edgefed_runs_ms: ours.map((v) => round(v)),
  };
}
