/**
 * scale: the hub at 10k-100k nodes, on the lowdb files and on PostgreSQL,
 * side by side in one run (issue 13). The hub runs in this process on an
 * external mosquitto (started here, `max_queued_messages 0` so a storm is
 * queued, not dropped); `generators` child processes publish the fleet
 * (scale-fleet.ts). Per store and fleet size:
 *   - storm: from the first registration until the hub lists all N active,
 *     and the hub's CPU per registration over that time;
 *   - steady heartbeats every 30 s: this process's CPU (hub only; the broker
 *     and the fleet are other processes) as % of one core, event-loop p99,
 *     RSS, and the store's liveness writes;
 *   - GET /federation/nodes?capability=camera&limit=100 (10 % of nodes match): median of 20;
 *   - restart: `edgefed start` as a new process on the same store, time to
 *     "edgefed ready" and its RSS then, beside the same for an empty store.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jsonLogger } from '../lib/log.js';
import { startFederation, type Federation } from '../server/federation.js';
import { freePort } from '../test/helpers/ports.js';
import { startPostgres, type PgServer } from '../test/helpers/postgres.js';
import { measureWindow } from './heartbeat.js';
import type { ScaleCommand, ScaleReport } from './scale-fleet.js';
import { median, round } from './stats.js';

const CLI = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const FLEET = fileURLToPath(new URL('./scale-fleet.ts', import.meta.url));

export interface ScaleOptions {
  sizes: number[];
  stores: Array<'files' | 'postgres'>;
  heartbeatMs: number;
  windowMs: number;
  generators: number;
  connectionsPerGenerator: number;
  /** How long the storm may take before the run is reported as not serving. */
  stormLimitMs: number;
}

async function startMosquitto(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  await fs.writeFile(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'max_queued_messages 0', 'max_inflight_messages 100', ''].join('\n'));
  const child = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null) throw new Error('mosquitto did not start');
  return { url: `mqtt://127.0.0.1:${port}`, async stop() { child.kill('SIGTERM'); await once(child, 'exit'); } };
}

function generator(): Promise<ChildProcess> {
  const child = fork(FLEET, [], { execArgv: ['--import', 'tsx'], stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`generator exited ${code}`)));
  });
}

function ask(child: ChildProcess, cmd: ScaleCommand, answer: ScaleReport['type']): Promise<ScaleReport> {
  return new Promise((resolve) => {
    const on = (m: ScaleReport) => { if (m.type === answer) { child.off('message', on); resolve(m); } };
    child.on('message', on);
    child.send(cmd);
  });
}

async function listTimes(fed: Federation): Promise<{ median_ms: number; nodes_answered: number }> {
  const times: number[] = [];
  let answered = 0;
  for (let i = 0; i < 20; i += 1) {
    const t0 = performance.now();
    const res = await fetch(`${fed.api.url}/federation/nodes?capability=camera&limit=100`);
    const body = (await res.json()) as { nodes: unknown[] };
    times.push(performance.now() - t0);
    answered = body.nodes.length;
  }
  return { median_ms: round(median(times), 2), nodes_answered: answered };
}

/** `edgefed start` in a new process on this store: ms until "edgefed ready", and its RSS then. */
async function restart(args: string[]): Promise<{ ready_ms: number; rss_mb: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '--http-port', '0', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    for await (const line of createInterface({ input: child.stdout! })) {
      if (!line.includes('"edgefed ready"')) continue;
      const readyMs = performance.now() - t0;
      const status = await fs.readFile(`/proc/${child.pid}/status`, 'utf8');
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
      return { ready_ms: Math.round(readyMs), rss_mb: round(rssKb / 1024) };
    }
    throw new Error('hub exited before ready');
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

async function oneRun(o: ScaleOptions, n: number, store: 'files' | 'postgres', pgServer: PgServer | undefined): Promise<Record<string, unknown>> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-scale-'));
  const broker = await startMosquitto(dir);
  const url = store === 'postgres' ? await pgServer!.createDatabase('scale') : undefined;
  const storeArgs = url ? ['--store', url] : [];
  const dataDir = path.join(dir, 'data');
  const empty = await restart(['--broker-url', broker.url, '--data-dir', path.join(dir, 'empty'), ...(url ? ['--store', await pgServer!.createDatabase('empty')] : [])]);
  // The product's default logging (info, one line per registration), to nowhere.
  const fed = await startFederation({ brokerUrl: broker.url, httpPort: 0, dataDir, ...(url ? { store: url } : {}), logger: jsonLogger('info', {}, { write: () => undefined }) });
  const gens = await Promise.all(Array.from({ length: o.generators }, generator));
  try {
    const share = Math.ceil(n / gens.length);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const stormed = Promise.all(gens.map((g, k) => ask(g, {
      cmd: 'storm', url: broker.url, prefix: 'n', from: k * share, count: Math.max(0, Math.min(share, n - k * share)),
      connections: o.connectionsPerGenerator, inflight: 20, heartbeatMs: o.heartbeatMs,
    }, 'stormed')));
    let activeMs = NaN;
    while (performance.now() - t0 < o.stormLimitMs) {
      if (fed.hub.countNodesByStatus().active >= n) { activeMs = performance.now() - t0; break; }
      await new Promise((r) => setTimeout(r, 100));
    }
    const stormCpu = process.cpuUsage(cpu0);
    const reports = (await stormed) as Array<Extract<ScaleReport, { type: 'stormed' }>>;
    await fed.hub.flush();
    await Promise.all(gens.map((g) => ask(g, { cmd: 'beat', heartbeatMs: o.heartbeatMs }, 'beating')));
    await new Promise((r) => setTimeout(r, Math.min(o.heartbeatMs, 15_000))); // a share of the fleet has beaten; liveness batches running
    const flushes0 = fed.hub.counters().flushes;
    const window = await measureWindow(fed, o.windowMs);
    const rssMb = round(process.memoryUsage().rss / 2 ** 20);
    const list = await listTimes(fed);
    const lastFlushMs = fed.hub.counters().last_flush_ms;
    const flushes = fed.hub.counters().flushes - flushes0;
    for (const g of gens) g.send({ cmd: 'stop' } satisfies ScaleCommand);
    await fed.stop();
    const registryBytes = store === 'files' ? (await fs.stat(path.join(dataDir, 'registry.json'))).size : undefined;
    const again = await restart(['--broker-url', broker.url, '--data-dir', dataDir, ...storeArgs]);
    return {
      store, nodes: n,
      storm_to_all_active_s: Number.isNaN(activeMs) ? `not within ${o.stormLimitMs / 1000} s (${fed.hub.countNodesByStatus().active} active)` : round(activeMs / 1000, 1),
      storm_publish_s: round(Math.max(...reports.map((r) => r.ms)) / 1000, 1),
      storm_errors: reports.reduce((a, r) => a + r.errors, 0),
      hub_cpu_us_per_registration: round(((stormCpu.user + stormCpu.system) / n), 0),
      heartbeats_per_s: window.heartbeats_per_s,
      hub_cpu_percent_of_one_core: window.cpu_percent_of_one_core,
      event_loop_p99_ms: window.event_loop_delay_p99_ms,
      event_loop_max_ms: window.event_loop_delay_max_ms,
      arrival_delay_p99_ms: window.arrival_delay_p99_ms,
      stalled_over_20ms_percent: window.stalled_over_20ms_percent,
      store_writes_in_window: flushes,
      last_node_write_ms: lastFlushMs,
      hub_rss_mb: rssMb,
      list_capability_limit100_median_ms: list.median_ms,
      list_nodes_answered: list.nodes_answered,
      restart_ready_ms: again.ready_ms,
      restart_rss_mb: again.rss_mb,
      empty_store_ready_ms: empty.ready_ms,
      empty_store_rss_mb: empty.rss_mb,
      ...(registryBytes !== undefined ? { registry_json_mb: round(registryBytes / 2 ** 20) } : {}),
    };
  } finally {
    for (const g of gens) if (g.exitCode === null) g.kill('SIGKILL');
    await fed.stop().catch(() => undefined);
    await broker.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export async function scale(o: ScaleOptions, print: (r: Record<string, unknown>) => void): Promise<void> {
  const pgServer = o.stores.includes('postgres') ? await startPostgres({ fsync: true }) : undefined;
  try {
    for (const n of o.sizes) for (const store of o.stores) print(await oneRun(o, n, store, pgServer));
  } finally {
    await pgServer?.destroy();
  }
}
