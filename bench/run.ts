/**
 * `npm run bench [scenario] [--nodes N] [...]`. Scenarios:
 *   registration-storm --nodes 1000|5000 [--runs 5] [--warmup 1] [--inflight 200] [--log info|silent]  (BENCH_PROFILE=f.cpuprofile: the hub's last run)
 *   heartbeat --nodes 5000 --interval 1s [--window 20s]
 *   agent-rss                (separate script: bench/agent-rss.ts)
 *   dispatch-latency --nodes 1000 --rate 200/s --duration 20s [--floor 10s] [--nagle] [--own-capability]
 *   dispatch-throughput --nodes 1000 [--steps 8,32,128,512,2048] [--warmup 2s] [--window 5s] [--nagle] [--own-capability]
 *   failover --nodes 100 [--victims 50] [--keepalive 5] [--heartbeat-interval 5s] [--runs 3]
 *   dashboard-feed --nodes 5000 --interval 1s [--window 10s] [--pages 3] [--pairs 3]
 *   auth-storm --nodes 2000 [--runs 5] [--warmup 1] [--concurrency 200] [--client mqtt|raw]
 *   state-rollout --nodes 5000 [--runs 3] [--inflight 200]   (issue 16: one `state set --capability` for all)
 *   scale [--nodes 10000,50000,100000] [--stores files,postgres] [--heartbeat-interval 30s] [--window 30s]
 *         [--generators 4] [--connections 25] [--storm-limit 180s]   (not in `all`: it takes ~20 min)
 *   takeover [--rounds 10] [--wpks 50] [--lease-ttl 10s]   (HA: kill -9 of the active hub; not in `all`)
 *   wpk-rollout --nodes 500 [--per-minute 3000] [--runs 3]   (issue 15: how evenly a rollout spreads its dispatches)
 *   wpk-rollout-engine [--nodes 100000] [--warm 60s]   (the engine alone on a fake clock: CPU per second of slots)
 * With no scenario, runs the set. Prints one JSON line per result.
 * The fleet's connections behave like the product's (since 967cc92):
 * TCP_NODELAY on both ends. `--nagle` is an ablation that turns it off on
 * both ends (see wpk-harness.ts); `--nodelay` is accepted and is the default.
 * `--own-capability` is a historical ablation (each node also has a capability
 * of its own; the i-th WPK targets node i mod N's): before 967cc92 it gave each
 * trigger one subscriber instead of N; now every mode-one trigger is addressed
 * to its assignee anyway, and it only changes placement.
 */
import { parseDuration } from '../lib/duration.js';
import type { LogLevel } from '../lib/log.js';
import { dispatchLatency } from './dispatch-latency.js';
import { dispatchThroughput } from './dispatch-throughput.js';
import { wpkRollout } from './wpk-rollout.js';
import { wpkRolloutEngine } from './wpk-rollout-engine.js';
import { failover } from './failover.js';
import { heartbeat } from './heartbeat.js';
import { dashboardFeed } from './dashboard-feed.js';
import { registrationStorm } from './registration-storm.js';
import { arg, machine } from './stats.js';
import { authStorm } from './auth-storm.js';
import { scale } from './scale.js';
import { takeover } from './takeover.js';
import { stateRollout } from './state-rollout.js';
import type { ClientKind } from './auth-storm-fleet.js';

const argv = process.argv.slice(2);
const scenario = argv[0] && !argv[0].startsWith('--') ? argv[0] : 'all';
const noDelay = !argv.includes('--nagle');
const ownCapability = argv.includes('--own-capability');

function print(name: string, result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ scenario: name, machine: machine(), date: new Date().toISOString(), ...result })}\n`);
}

function logLevel(text: string): LogLevel {
  if (text !== 'info' && text !== 'silent' && text !== 'debug') throw new Error(`--log "${text}": info (the product's default), silent or debug`);
  return text;
}

async function storm(nodes: number): Promise<void> {
  print('registration-storm', await registrationStorm({
    nodes, runs: Number(arg(argv, 'runs', '5')), inflight: Number(arg(argv, 'inflight', '200')), warmup: Number(arg(argv, 'warmup', '1')),
    logLevel: logLevel(arg(argv, 'log', 'info')), profileFile: process.env.BENCH_PROFILE,
  }));
}

async function beats(): Promise<void> {
  const nodes = Number(arg(argv, 'nodes', '5000'));
  print('heartbeat', await heartbeat(nodes, parseDuration(arg(argv, 'interval', '1s')), parseDuration(arg(argv, 'window', '20s'))));
}

async function feed(): Promise<void> {
  print('dashboard-feed', await dashboardFeed(
    Number(arg(argv, 'nodes', '5000')), parseDuration(arg(argv, 'interval', '1s')), parseDuration(arg(argv, 'window', '10s')),
    Number(arg(argv, 'pages', '3')), Number(arg(argv, 'pairs', '3')),
  ));
}

/** `200/s` or `200`: per second. */
function rate(text: string): number {
  const n = Number(text.replace(/\/s$/, ''));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--rate "${text}": give WPKs per second, e.g. 200/s`);
  return n;
}

async function latency(defaults = false): Promise<void> {
  const a = (name: string, fallback: string) => (defaults ? fallback : arg(argv, name, fallback));
  print('dispatch-latency', await dispatchLatency({
    nodes: Number(a('nodes', '1000')), ratePerS: rate(a('rate', '200/s')), durationMs: parseDuration(a('duration', '20s')),
    floorMs: parseDuration(a('floor', '10s')), noDelay, ownCapability,
  }));
}

async function throughput(defaults = false): Promise<void> {
  const a = (name: string, fallback: string) => (defaults ? fallback : arg(argv, name, fallback));
  print('dispatch-throughput', await dispatchThroughput({
    nodes: Number(a('nodes', '1000')), steps: a('steps', '8,32,128,512,2048').split(',').map(Number),
    warmupMs: parseDuration(a('warmup', '2s')), windowMs: parseDuration(a('window', '5s')), noDelay, ownCapability,
  }));
}

async function fail(defaults = false): Promise<void> {
  const a = (name: string, fallback: string) => (defaults ? fallback : arg(argv, name, fallback));
  print('failover', await failover({
    nodes: Number(a('nodes', '100')), victims: Number(a('victims', '50')), keepaliveS: Number(a('keepalive', '5')),
    heartbeatMs: parseDuration(a('heartbeat-interval', '5s')), runs: Number(a('runs', '3')),
  }));
}

function clientKind(text: string): ClientKind {
  if (text !== 'mqtt' && text !== 'raw') throw new Error(`--client "${text}": mqtt (mqtt.js clients) or raw (hand-encoded CONNECT on a Node socket)`);
  return text;
}

async function auth(defaults = false): Promise<void> {
  const a = (name: string, fallback: string) => (defaults ? fallback : arg(argv, name, fallback));
  print('auth-storm', await authStorm({
    nodes: Number(a('nodes', '2000')), runs: Number(a('runs', '5')), warmup: Number(a('warmup', '1')), concurrency: Number(a('concurrency', '200')),
    client: clientKind(a('client', 'mqtt')),
  }));
}

async function scaleRun(): Promise<void> {
  const stores = arg(argv, 'stores', 'files,postgres').split(',');
  for (const s of stores) if (s !== 'files' && s !== 'postgres') throw new Error(`--stores "${s}": files and/or postgres`);
  await scale({
    sizes: arg(argv, 'nodes', '10000,50000,100000').split(',').map(Number),
    stores: stores as Array<'files' | 'postgres'>,
    heartbeatMs: parseDuration(arg(argv, 'heartbeat-interval', '30s')),
    windowMs: parseDuration(arg(argv, 'window', '30s')),
    generators: Number(arg(argv, 'generators', '4')),
    connectionsPerGenerator: Number(arg(argv, 'connections', '25')),
    stormLimitMs: parseDuration(arg(argv, 'storm-limit', '180s')),
  }, (r) => print('scale', r));
}

if (scenario === 'registration-storm') await storm(Number(arg(argv, 'nodes', '1000')));
else if (scenario === 'heartbeat') await beats();
else if (scenario === 'dashboard-feed') await feed();
else if (scenario === 'agent-rss') await import('./agent-rss.js');
else if (scenario === 'dispatch-latency') await latency();
else if (scenario === 'dispatch-throughput') await throughput();
else if (scenario === 'failover') await fail();
else if (scenario === 'auth-storm') await auth();
else if (scenario === 'scale') await scaleRun();
else if (scenario === 'takeover') print('takeover', await takeover({ rounds: Number(arg(argv, 'rounds', '10')), wpks: Number(arg(argv, 'wpks', '50')), ttlMs: parseDuration(arg(argv, 'lease-ttl', '10s')) }));
else if (scenario === 'wpk-rollout') {
  print('wpk-rollout', await wpkRollout({ nodes: Number(arg(argv, 'nodes', '500')), perMinute: Number(arg(argv, 'per-minute', '3000')), runs: Number(arg(argv, 'runs', '3')) }));
}
else if (scenario === 'wpk-rollout-engine') {
  print('wpk-rollout-engine', await wpkRolloutEngine({ nodes: Number(arg(argv, 'nodes', '100000')), warmMs: parseDuration(arg(argv, 'warm', '60s')) }));
}
else if (scenario === 'state-rollout') {
  print('state-rollout', await stateRollout({ nodes: Number(arg(argv, 'nodes', '5000')), runs: Number(arg(argv, 'runs', '3')), inflight: Number(arg(argv, 'inflight', '200')) }));
}
else if (scenario === 'all') {
  await storm(1000);
  await storm(5000);
  await beats();
  await feed();
  await import('./agent-rss.js');
  await latency(true);
  await throughput(true);
  await fail(true);
  await auth(true);
} else {
  process.stderr.write(`unknown scenario "${scenario}": registration-storm, heartbeat, dashboard-feed, agent-rss, dispatch-latency, dispatch-throughput, failover, auth-storm, scale, takeover, state-rollout, wpk-rollout, wpk-rollout-engine\n`);
  process.exitCode = 2;
}
