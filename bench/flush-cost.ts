/**
 * flush-cost: what one registry flush costs with lowdb's DataFile (steno:
 * temp file and rename, no fsync) and with the hub's DurableDataFile (temp
 * file, fsync, rename, fsync of the directory), on the same registry of N
 * nodes in the same data dir, alternating, so machine noise hits both alike.
 *
 *   node --import tsx bench/flush-cost.ts [--nodes 5000] [--runs 15]
 *
 * Set TMPDIR to put the data dir on the disk to measure (tmpfs makes fsync free).
 * Prints one JSON line.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import { DataFile } from 'lowdb/node';
import { Registry } from '../hub/registry.js';
import { RegistryStore, compactJsonFile, registryPath, type RegistryFile } from '../hub/store.js';
import { registrationOf } from './clients.js';
import { arg, machine, median, percentile, round } from './stats.js';

const argv = process.argv.slice(2);
const nodes = Number(arg(argv, 'nodes', '5000'));
const runs = Number(arg(argv, 'runs', '15'));

const steno = (file: string): Adapter<RegistryFile> =>
  new DataFile<RegistryFile>(file, { parse: (text) => JSON.parse(text) as RegistryFile, stringify: (data) => JSON.stringify(data) });

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-bench-flush-'));
try {
  const registry = new Registry();
  for (let i = 0; i < nodes; i += 1) registry.applyRegistration(registrationOf(`node-${i}`), { now: Date.now(), live: true });
  const records = [...registry.all()];
  const stores = { steno: new RegistryStore(steno(registryPath(dir))), durable: new RegistryStore(compactJsonFile<RegistryFile>(registryPath(dir))) };
  const times: Record<keyof typeof stores, number[]> = { steno: [], durable: [] };
  for (let i = 0; i < runs + 1; i += 1) {
    for (const kind of ['steno', 'durable'] as const) {
      const t0 = performance.now();
      await stores[kind].save(records, Date.now());
      if (i > 0) times[kind].push(performance.now() - t0); // the first round warms up
    }
  }
  const bytes = (await fs.stat(registryPath(dir))).size;
  const s = median(times.steno);
  const d = median(times.durable);
  process.stdout.write(`${JSON.stringify({
    scenario: 'flush-cost', machine: machine(), date: new Date().toISOString(), nodes, runs, registry_bytes: bytes,
    steno_median_ms: round(s, 2), durable_median_ms: round(d, 2), added_median_ms: round(d - s, 2),
    steno_p90_ms: round(percentile(times.steno, 90), 2), durable_p90_ms: round(percentile(times.durable, 90), 2),
    steno_runs_ms: times.steno.map((v) => round(v, 1)), durable_runs_ms: times.durable.map((v) => round(v, 1)),
  })}\n`);
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}
