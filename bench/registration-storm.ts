/**
 * registration-storm: N devices boot at once, `inflight` at a time, in a
 * child process (storm-fleet.ts), each connecting with its Last Will and
 * publishing a retained QoS 1 registration and a retained QoS 1 `online`
 * status. Timed from the first CONNECT until
 *  - edgefed: the hub (in this process, embedded broker) lists all N active;
 *  - bare: an Aedes broker set up as the product's (broker/index.ts: same
 *    listener, packet guard and options, no hub) in this process, and one
 *    wildcard subscriber, in a process of its own, has seen all N
 *    registrations. Not in the fleet's process: there it would slow the
 *    devices of the bare runs only (the fleet is the bottleneck on a busy
 *    machine); not in this one: it would add a client's decoding to the floor.
 * Both in one invocation, alternating bare/hub per run, so machine noise hits
 * both alike; the ratio is of the medians.
 */
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createBroker } from '../broker/index.js';
import { startFederation } from '../server/federation.js';
import { jsonLogger, silentLogger, type Logger, type LogLevel } from '../lib/log.js';
import { ChildFleet } from './child-fleet.js';
import { startProfile } from './profile.js';
import { median, round } from './stats.js';
import type { StormCommand, StormReport } from './storm-fleet.js';
import { pollUntil, sleep } from './poll.js';

const SCRIPT = fileURLToPath(new URL('./storm-fleet.ts', import.meta.url));
/** What startFederation gives its embedded broker (federation.ts). */
const PRODUCT_PACKET_BYTES = 256 * 1024;
const STORM_TIMEOUT_MS = 180_000;
/** Lets the hub's first resync and the previous run's teardown settle before the clock starts. */
const SETTLE_MS = 1000;

class StormFleet extends ChildFleet<StormReport, StormCommand> {
  static open(): Promise<StormFleet> {
    return ChildFleet.start((child) => new StormFleet(child, 'storm fleet', 10_000), SCRIPT, [], 30_000);
  }
}

/** The product's logger at `level`, writing synchronously (as to a stderr redirected to a file) to /dev/null. */
function benchLogger(level: LogLevel): Logger {
  if (level === 'silent') return silentLogger;
  const fd = fsSync.openSync('/dev/null', 'w');
  return jsonLogger(level, {}, { write: (line: string) => fsSync.writeSync(fd, line) });
}


function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

const describe = (t: Took): string => `${round(t.ms)} ms (cpu ${round(t.cpuMs)} ms, loop ${round(t.elu * 100)} % busy, fleet acked at ${round(t.fleetMs)} ms`
  + `${t.flushes === undefined ? '' : `, ${t.flushes} registry writes, ${round(t.flushMs ?? 0)} ms`})`;

function checkStorm(r: Extract<StormReport, { type: 'stormed' }>): void {
  if (r.errors > 0) throw new Error(`${r.errors} devices failed: ${r.firstError}`);
}

/** Wall time to the goal; this process's CPU and event-loop utilisation meanwhile; when the fleet had all its PUBACKs. */
interface Took { ms: number; cpuMs: number; elu: number; fleetMs: number; flushes?: number; flushMs?: number }

/** Starts the fleet's storm and times it until `goal` resolves: wall, CPU and loop use meanwhile, and when the fleet had its acks. */
async function timedStorm(fleet: StormFleet, storm: { url: string; n: number; prefix: string; inflight: number }, profileFile: string | undefined, goal: () => Promise<void>): Promise<Took> {
  const stormed = fleet.next('stormed', STORM_TIMEOUT_MS);
  const profile = await startProfile(profileFile);
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  const fleetDone = stormed.then((r) => { checkStorm(r); return performance.now() - started; });
  fleetDone.catch(() => undefined); // awaited below, unless the goal already failed
  fleet.send({ cmd: 'storm', ...storm });
  await goal();
  const took = { ms: performance.now() - started, cpuMs: cpuMs(cpu), elu: performance.eventLoopUtilization(elu).utilization, fleetMs: 0 };
  await profile.stop();
  return { ...took, fleetMs: await fleetDone };
}

async function bare(fleet: StormFleet, observer: StormFleet, n: number, inflight: number, run: number, log: Logger, profileFile: string | undefined): Promise<Took> {
  const broker = await createBroker({ host: '127.0.0.1', port: 0, maxPacketBytes: PRODUCT_PACKET_BYTES, logger: log });
  try {
    await observer.ask({ cmd: 'subscribe', url: broker.url!, n }, 'subscribed');
    await sleep(SETTLE_MS);
    const seen = observer.next('seen', STORM_TIMEOUT_MS);
    return await timedStorm(fleet, { url: broker.url!, n, prefix: `bare${run}`, inflight }, profileFile, () => seen.then(() => undefined));
  } finally {
    await Promise.all([fleet.ask({ cmd: 'close' }, 'closed', 60_000), observer.ask({ cmd: 'close' }, 'closed', 60_000)]);
    await broker.close();
  }
}

async function hub(fleet: StormFleet, n: number, inflight: number, run: number, log: Logger, profileFile: string | undefined): Promise<Took> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-bench-storm-'));
  const fed = await startFederation({ mqttPort: 0, httpPort: 0, dataDir: dir, logger: log });
  try {
    await sleep(SETTLE_MS);
    const h = fed.hub;
    const flushesBefore = h.counters().flushes;
    let flushMs = 0;
    const onFlush = (ms: number) => { flushMs += ms; };
    const stopCounting = h.events.registryFlushed.add(onFlush);
    // The counter is cheap to read; the registry is counted only once it can be done.
    const allActive = () => pollUntil(() => h.counters().registrations >= n && h.countNodesByStatus().active >= n, 5, STORM_TIMEOUT_MS);
    const took = await timedStorm(fleet, { url: fed.mqttUrl!, n, prefix: `hub${run}`, inflight }, profileFile, allActive);
    stopCounting();
    return { ...took, flushes: h.counters().flushes - flushesBefore, flushMs };
  } finally {
    await fleet.ask({ cmd: 'close' }, 'closed', 60_000);
    await fed.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export interface StormOptions {
  nodes: number;
  runs: number;
  /** Unrecorded bare+hub pairs first (JIT warm-up of this process and the fleet's). */
  warmup: number;
  inflight: number;
  /** Log level of the broker and hub (the product's default: info), written to /dev/null. */
  logLevel: LogLevel;
  /** `BENCH_PROFILE=x.cpuprofile`: CPU profiles of the last run's storm windows, the hub's in x.cpuprofile, bare's in x-bare.cpuprofile. */
  profileFile?: string | undefined;
}

export async function registrationStorm(o: StormOptions): Promise<Record<string, number | number[] | string>> {
  const [fleet, observer] = await Promise.all([StormFleet.open(), StormFleet.open()]);
  const log = benchLogger(o.logLevel);
  const bareRuns: Took[] = [];
  const hubRuns: Took[] = [];
  try {
    for (let i = 0; i < o.warmup; i += 1) {
      await bare(fleet, observer, o.nodes, o.inflight, -1 - i, log, undefined);
      await hub(fleet, o.nodes, o.inflight, -1 - i, log, undefined);
    }
    for (let i = 0; i < o.runs; i += 1) {
      const last = i === o.runs - 1 && o.profileFile;
      const runBare = () => bare(fleet, observer, o.nodes, o.inflight, i, log, last ? o.profileFile!.replace(/(\.cpuprofile)?$/, '-bare.cpuprofile') : undefined);
      const runHub = () => hub(fleet, o.nodes, o.inflight, i, log, last ? o.profileFile : undefined);
      // Alternate which goes first, so neither always follows the other's teardown.
      const b = i % 2 === 0 ? await runBare() : undefined;
      const h = await runHub();
      const b2 = b ?? await runBare();
      bareRuns.push(b2);
      hubRuns.push(h);
      process.stderr.write(`registration-storm run ${i + 1}/${o.runs}: bare ${describe(b2)}, hub ${describe(h)}, ${round(h.ms / b2.ms, 2)}x, load ${os.loadavg()[0]!.toFixed(2)}\n`);
    }
  } finally {
    await Promise.all([fleet.stop(), observer.stop()]);
  }
  const bareMs = bareRuns.map((r) => r.ms);
  const hubMs = hubRuns.map((r) => r.ms);
  const ratios = hubRuns.map((h, i) => h.ms / bareRuns[i]!.ms);
  const bm = median(bareMs);
  const hm = median(hubMs);
  return {
    nodes: o.nodes, inflight: o.inflight, runs: o.runs, warmup: o.warmup,
    bare_aedes_median_ms: round(bm), edgefed_median_ms: round(hm), ratio: round(hm / bm, 2), median_run_ratio: round(median(ratios), 2),
    bare_aedes_runs_ms: bareMs.map((v) => round(v)), edgefed_runs_ms: hubMs.map((v) => round(v)), run_ratios: ratios.map((v) => round(v, 2)),
    bare_cpu_median_ms: round(median(bareRuns.map((r) => r.cpuMs))), edgefed_cpu_median_ms: round(median(hubRuns.map((r) => r.cpuMs))),
    bare_fleet_acked_median_ms: round(median(bareRuns.map((r) => r.fleetMs))), edgefed_fleet_acked_median_ms: round(median(hubRuns.map((r) => r.fleetMs))),
    log_level: o.logLevel, load_1m: round(os.loadavg()[0]!, 2),
  };
}
