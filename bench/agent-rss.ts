/**
 * Resident memory of an idle agent process, against the 70 MB budget.
 *
 *   node --import tsx bench/agent-rss.ts     (BENCH_IDLE_MS=3000, BENCH_SAMPLES=3)
 *
 * Each figure is a separate child process, connected (where it applies) to an
 * aedes started here, left idle, then read from /proc/<pid>/status (VmRSS, so
 * Linux only); figures are medians over BENCH_SAMPLES runs because the
 * spread between identical runs is several MB (malloc'd compiler memory from
 * V8's background threads). Baselines: bare node, and node with only mqtt
 * imported. `agent_lean_mb` runs the same agent with V8 flags that trade a
 * little CPU for memory (LEAN_FLAGS), as a device's service unit could.
 * It measures the compiled JS in dist/ when present (`npm run build`), since
 * that is what a device runs; otherwise it falls back to tsx, which adds its
 * own loader and esbuild to every child: the output says which, and gives the
 * tsx baseline so the difference can be read off.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Aedes } from 'aedes';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 3000);
const SAMPLES = Math.max(1, Number(process.env.BENCH_SAMPLES ?? 3));
const LEAN_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size', '--v8-pool-size=1'];
const BUDGET_MB = 70;
const distAgent = new URL('dist/agent/index.js', pathToFileURL(ROOT + '/'));
const distCli = new URL('dist/cli/main.js', pathToFileURL(ROOT + '/'));
const useDist = existsSync(distAgent) && existsSync(distCli);
const agentModule = useDist ? distAgent.href : new URL('agent/index.ts', pathToFileURL(ROOT + '/')).href;
const mainModule = useDist ? distCli.href : new URL('cli/main.ts', pathToFileURL(ROOT + '/')).href;
const loader = useDist ? [] : ['--import', 'tsx'];

// Every child prints "ready" once it is in the state to measure, then idles until killed.
const READY = `process.stdout.write('ready\\n');`;
const scripts = {
  bare: `${READY} setInterval(() => {}, 60_000);`,
  mqttOnly: `await import('mqtt'); ${READY} setInterval(() => {}, 60_000);`,
  agent: `const { startAgent } = await import(${JSON.stringify(agentModule)});
const agent = await startAgent({ nodeId: 'bench-node', capabilities: ['monitoring', 'basic-actions'], brokerUrl: process.env.BENCH_BROKER });
agent.once('connect', () => { ${READY} });
process.once('SIGTERM', () => agent.stop().then(() => process.exit(0)));`,
  // What a device runs: `edgefed agent ...` through the CLI entry (bin/edgefed.js loads dist/cli/main.js).
  agentCli: `process.argv = [process.execPath, 'edgefed', 'agent', '--id', 'bench-cli', '--capabilities', 'monitoring', '--broker', process.env.BENCH_BROKER, '--log-level', 'warn'];
setTimeout(() => { ${READY} }, 500);
await import(${JSON.stringify(mainModule)});`,
};

function rssMb(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kb('VmRSS') / 102.4) / 10, hwm: Math.round(kb('VmHWM') / 102.4) / 10 };
}

async function measure(script: string, extraArgs: string[], broker: string): Promise<{ rss: number; hwm: number }> {
  const child = spawn(process.execPath, [...extraArgs, '--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, BENCH_BROKER: broker },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('child never became ready')), 15_000);
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    return rssMb(child.pid!);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    if (child.exitCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

async function median(script: string, extraArgs: string[], broker: string): Promise<{ rss: number; hwm: number; samples: number[] }> {
  const runs: Array<{ rss: number; hwm: number }> = [];
  for (let i = 0; i < SAMPLES; i++) runs.push(await measure(script, extraArgs, broker));
  runs.sort((a, b) => a.rss - b.rss);
  return { ...runs[Math.floor((runs.length - 1) / 2)]!, samples: runs.map((r) => r.rss) };
}

const broker = await Aedes.createBroker();
const server = net.createServer((socket) => broker.handle(socket));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
try {
  const bare = await median(scripts.bare, [], url);
  const mqttOnly = await median(scripts.mqttOnly, [], url);
  const agent = await median(scripts.agent, loader, url);
  const agentCli = await median(scripts.agentCli, loader, url);
  const lean = await median(scripts.agent, [...LEAN_FLAGS, ...loader], url);
  const result: Record<string, unknown> = {
    bench: 'agent-rss',
    mode: useDist ? 'dist' : 'tsx',
    node: process.version,
    idle_ms: IDLE_MS,
    samples: SAMPLES,
    bare_node_mb: bare.rss,
    mqtt_only_mb: mqttOnly.rss,
    agent_mb: agent.rss,
    agent_samples_mb: agent.samples,
    agent_cli_mb: agentCli.rss,
    agent_peak_mb: agent.hwm,
    agent_lean_mb: lean.rss,
    lean_flags: LEAN_FLAGS.join(' '),
    budget_mb: BUDGET_MB,
    within_budget: Math.max(agent.rss, agentCli.rss) < BUDGET_MB,
    lean_within_budget: lean.rss < BUDGET_MB,
  };
  if (!useDist) {
    result.tsx_baseline_mb = (await median(scripts.bare, loader, url)).rss;
    result.note = 'dist/ missing: agent figures include the tsx loader (see tsx_baseline_mb); run "npm run build" for device figures';
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await new Promise<void>((resolve) => broker.close(() => resolve()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
