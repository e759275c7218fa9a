/**
 * state-rollout (issue 16): N devices (state-fleet.ts, a child process) wait
 * on their retained desired state; one `edgefed state set --capability C
 * --patch JSON` (the real CLI, a process of its own) changes it for all of
 * them. Timed from the CLI's start until the hub (in this process, with its
 * embedded broker on loopback TCP and a data dir) counts every node in sync
 * at the new version; also when the CLI ended, and the CPU and event-loop use
 * of this process (hub + broker) meanwhile. Several runs, each a new version
 * for every node; the figures are medians.
 */
import { spawn } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { jsonLogger } from '../lib/log.js';
import { startFederation, type Federation } from '../server/federation.js';
import { ChildFleet } from './child-fleet.js';
import { median, round } from './stats.js';
import { BENCH_CAPABILITY, type StateFleetCommand, type StateFleetReport } from './state-fleet.js';
import { pollUntil, sleep } from './poll.js';

const SCRIPT = fileURLToPath(new URL('./state-fleet.ts', import.meta.url));
const CLI = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const TIMEOUT_MS = 300_000;

class StateFleet extends ChildFleet<StateFleetReport, StateFleetCommand> {
  static open(): Promise<StateFleet> {
    return ChildFleet.start((child) => new StateFleet(child, 'state fleet', 15_000), SCRIPT, [], 30_000);
  }
}


/** Resolves when the CLI exits 0, with its wall time; rejects with its stderr otherwise. */
function runCli(args: string[], started: number): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`edgefed state set exited ${code}: ${stderr}`)))));
}

function allInSync(fed: Federation, n: number, version: number): boolean {
  if (fed.hubApi.countOutOfSync() > 0) return false;
  let at = 0;
  for (const r of fed.hubApi.eachNode()) if ((r.twin?.version ?? 0) === version) at += 1;
  return at >= n;
}

export interface RolloutRun { ms: number; cliMs: number; cpuMs: number; elu: number; patches: number }

export async function stateRollout(opts: { nodes: number; runs: number; inflight: number }): Promise<Record<string, unknown>> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-bench-state-'));
  const fd = fsSync.openSync('/dev/null', 'w');
  const log = jsonLogger('info', {}, { write: (line: string) => fsSync.writeSync(fd, line) });
  const fed = await startFederation({ mqttPort: 0, httpPort: 0, dataDir: dir, logger: log });
  const fleet = await StateFleet.open();
  const runs: RolloutRun[] = [];
  try {
    const connected = await fleet.ask({ cmd: 'connect', url: fed.mqttUrl!, n: opts.nodes, prefix: 'st', inflight: opts.inflight }, 'connected', TIMEOUT_MS);
    if (connected.errors > 0) throw new Error(`${connected.errors} devices failed: ${connected.firstError}`);
    await pollUntil(() => fed.hubApi.countNodesByStatus().active >= opts.nodes, 10, TIMEOUT_MS);
    await sleep(1000);
    for (let run = 1; run <= opts.runs; run += 1) {
      const patches = fed.hubApi.counters().state.patches;
      const cpu = process.cpuUsage();
      const elu = performance.eventLoopUtilization();
      const started = performance.now();
      const cli = runCli(['state', 'set', '--capability', BENCH_CAPABILITY, '--patch', JSON.stringify({ interval_s: run, model: { name: `v${run}` } }), '--hub', fed.api.url], started);
      await pollUntil(() => allInSync(fed, opts.nodes, run), 10, TIMEOUT_MS);
      const ms = performance.now() - started;
      const d = process.cpuUsage(cpu);
      const cliMs = await cli;
      runs.push({ ms, cliMs, cpuMs: (d.user + d.system) / 1000, elu: performance.eventLoopUtilization(elu).utilization, patches: fed.hubApi.counters().state.patches - patches });
      process.stderr.write(`run ${run}: all ${opts.nodes} in sync after ${round(ms)} ms (CLI done at ${round(cliMs)} ms), hub CPU ${round((d.user + d.system) / 1000)} ms\n`);
      await sleep(1000);
    }
  } finally {
    await fleet.stop();
    await fed.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
  const inSync = median(runs.map((r) => r.ms));
  const cpuMs = median(runs.map((r) => r.cpuMs));
  return {
    nodes: opts.nodes,
    runs: runs.map((r) => ({ in_sync_ms: round(r.ms), cli_ms: round(r.cliMs), hub_cpu_ms: round(r.cpuMs), hub_loop_busy_pct: round(r.elu * 100), patches: r.patches })),
    in_sync_ms_median: round(inSync),
    cli_ms_median: round(median(runs.map((r) => r.cliMs))),
    hub_cpu_ms_median: round(cpuMs),
    hub_cpu_pct_of_one_core: round((cpuMs / inSync) * 100),
  };
}
