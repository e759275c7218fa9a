/**
 * heartbeat: the hub and its embedded broker in this process, N simulated
 * agents (`edgefed simulate`) in a child process beating every interval.
 * Reports this process's CPU (hub + broker) as % of one core and the event
 * loop delay p99 over the measuring window, after all N are active.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Aedes } from 'aedes';
import { startFederation, type Federation } from '../server/federation.js';
import { silentLogger } from '../lib/log.js';
import { startProfile } from './profile.js';
import { round } from './stats.js';

const CLI = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const LOOP_RESOLUTION_MS = 1;
const lateness = (ns: number): number => round(Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS), 2);

/** Counts (re)connections and disconnections seen by the broker. */
type Churn = ReturnType<typeof watchChurn>;

function watchChurn(aedes: Aedes) {
  let connects = 0;
  let disconnects = 0;
  let lastConnectAt = Date.now();
  aedes.on('client', () => { connects += 1; lastConnectAt = Date.now(); });
  aedes.on('clientDisconnect', () => { disconnects += 1; });
  const errors = new Map<string, number>();
  aedes.on('clientError', (_client, err) => errors.set(err.message, (errors.get(err.message) ?? 0) + 1));
  return {
    errors,
    get lastConnectAt() { return lastConnectAt; },
    snapshot: () => ({ connects, disconnects }),
    reset: () => { connects = 0; disconnects = 0; },
  };
}

export interface WindowFigures {
  window_s: number;
  heartbeats_per_s: number;
  cpu_percent_of_one_core: number;
  event_loop_delay_p50_ms: number;
  event_loop_delay_p99_ms: number;
  event_loop_delay_max_ms: number;
  still_active: number;
  registry_flushes: number;
  /** The p99 of the wait a message arriving at a random moment sees (time-weighted: one long stall counts for its length). */
  arrival_delay_p99_ms: number;
  /** Share of the window inside stalls of the event loop longer than 20 ms. */
  stalled_over_20ms_percent: number;
}

/**
 * The event loop's stalls as a device sees them. monitorEventLoopDelay
 * counts one sample per tick, so a 1 s stall is one sample among
 * thousands and vanishes from its p99; here each gap between 1 ms ticks is
 * kept, and a message arriving during a gap of g ms waits up to g.
 */
function stallProbe(): { stop(): { arrivalP99Ms: number; stalledPercent: number } } {
  const gaps: number[] = [];
  const t0 = performance.now();
  let last = t0;
  const timer = setInterval(() => { const now = performance.now(); gaps.push(now - last); last = now; }, 1);
  return {
    stop() {
      clearInterval(timer);
      const total = last - t0;
      const stalled = gaps.filter((g) => g > 20).reduce((a, b) => a + b, 0);
      // P(wait > d) = sum(max(0, g - d)) / total; find d where it is 1 %.
      const over = (d: number) => gaps.reduce((a, g) => a + Math.max(0, g - d), 0) / total;
      let lo = 0;
      let hi = Math.max(1, ...gaps);
      for (let i = 0; i < 40; i += 1) { const mid = (lo + hi) / 2; if (over(mid) > 0.01) lo = mid; else hi = mid; }
      return { arrivalP99Ms: round(hi, 2), stalledPercent: round((stalled / total) * 100, 2) };
    },
  };
}

/** This process's CPU (hub + broker) and event-loop delay over one window of a steady fleet. */
export async function measureWindow(fed: Federation, windowMs: number): Promise<WindowFigures> {
  const beatsBefore = fed.hub.counters().messages.heartbeat;
  const flushesBefore = fed.hub.counters().flushes;
  // The histogram records the time between its 1 ms timer ticks, so the
  // delay (lateness) of the loop is each value minus that resolution.
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  const profile = await startProfile(process.env.BENCH_PROFILE);
  const stalls = stallProbe();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const cpu = process.cpuUsage(cpu0);
  const elapsed = performance.now() - t0;
  loop.disable();
  const stalled = stalls.stop();
  await profile.stop();
  const beats = fed.hub.counters().messages.heartbeat - beatsBefore;
  return {
    window_s: round(elapsed / 1000),
    heartbeats_per_s: round(beats / (elapsed / 1000)),
    cpu_percent_of_one_core: round(((cpu.user + cpu.system) / 1000 / elapsed) * 100),
    event_loop_delay_p50_ms: lateness(loop.percentile(50)),
    event_loop_delay_p99_ms: lateness(loop.percentile(99)),
    event_loop_delay_max_ms: lateness(loop.max),
    still_active: fed.hub.countNodesByStatus().active,
    registry_flushes: fed.hub.counters().flushes - flushesBefore,
    arrival_delay_p99_ms: stalled.arrivalP99Ms,
    stalled_over_20ms_percent: stalled.stalledPercent,
  };
}

/** A federation with N simulated agents beating every interval, once all are registered and none reconnects. */
export async function steadyFleet(n: number, intervalMs: number): Promise<{ fed: Federation; sim: ChildProcess; churn: Churn; dir: string; close(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-bench-hb-'));
  const fed = await startFederation({ mqttPort: 0, httpPort: 0, dataDir: dir, logger: silentLogger });
  const sim = spawn(process.execPath, ['--import', 'tsx', CLI, 'simulate', '--nodes', String(n), '--broker', fed.mqttUrl!,
    '--heartbeat-interval', `${intervalMs}ms`, '--rate', '1000', '--keepalive', '60'], { stdio: ['ignore', 'ignore', 'ignore'] });
  const churn = watchChurn(fed.broker!.aedes);
  const close = async () => {
    sim.kill('SIGKILL');
    await fed.stop();
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 180_000;
    // Steady state: every node registered, and no (re)connection for 3 intervals.
    while (fed.hub.nodes().length < n || Date.now() - churn.lastConnectAt < 3 * intervalMs) {
      if (Date.now() > deadline) throw new Error(`no steady state: ${fed.hub.nodes().length}/${n} registered, ${JSON.stringify(churn.snapshot())}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { fed, sim, churn, dir, close };
}

export async function heartbeat(n: number, intervalMs: number, windowMs: number): Promise<Record<string, number>> {
  const { fed, churn, close } = await steadyFleet(n, intervalMs);
  try {
    const rampChurn = churn.snapshot();
    churn.reset();
    const w = await measureWindow(fed, windowMs);
    return {
      nodes: n,
      interval_ms: intervalMs,
      ...w,
      ramp_connects: rampChurn.connects,
      ramp_disconnects: rampChurn.disconnects,
      window_connects: churn.snapshot().connects,
      client_errors: [...churn.errors.values()].reduce((a, b) => a + b, 0),
      last_flush_ms: fed.hub.counters().last_flush_ms,
    };
  } finally {
    await close();
  }
}
