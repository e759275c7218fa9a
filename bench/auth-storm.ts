/**
 * auth-storm: connections per second into the embedded broker with JWT
 * verification off and on (`startFederation({ auth: {} })`), in the same run.
 *
 * The hub and its broker run in this process; N clients (plain mqtt.js, or
 * with `--client raw` a hand-encoded CONNECT on a socket) connect from a
 * child process (auth-storm-fleet.ts) over loopback TCP to the broker's own
 * listener (ephemeral port), at most `concurrency` CONNECTs in flight. Every
 * client uses its node id as client id and username and its own agent token
 * as password, in both modes: the CONNECT packets are the same, only the
 * broker's checks differ. Tokens are minted here from the run's data dir key
 * (the one the federation loads), before anything is timed.
 *
 * One run of a mode, on a fresh federation:
 *  1. first-connect storm: N connects, every token new to the verifier's
 *     identity cache (a fresh federation has an empty one);
 *  2. one heartbeat per client (QoS 0, its own `nodes/{id}/heartbeat`, which
 *     the ACL allows): timed until the hub has counted N, and checked that
 *     the ACL refused none;
 *  3. all clients disconnect; once the broker holds no session of theirs,
 *  4. reconnect storm: the same N tokens again (cached identities with auth);
 *  5. all clients disconnect, the federation stops and starts again on the
 *     same data dir (a hub restart: its in-memory caches are gone; with auth,
 *     the verified identities it persisted in keys/verified-tokens.json are
 *     not), and
 *  6. restart storm: the same N tokens again. The signature checks made
 *     during it (WebCrypto `verify` calls in this process) are counted: with
 *     the persisted identities there are none.
 * A storm's time runs from the first CONNECT the fleet sent until its N-th
 * CONNACK (the fleet's clock, the same epoch clock as here); the moment the
 * broker registered its N-th client (aedes `client` event) is reported too,
 * and so are the CPU of both processes, this one's event loop utilisation and
 * its main thread's own CPU per connect (Linux /proc).
 *
 * Modes alternate off / on / off / on ... (`warmup` discarded pairs first),
 * and each pair's on/off ratio is a same-run ratio. `BENCH_PROFILE=x.cpuprofile`
 * adds one pair after the measured ones (not counted) and profiles this
 * process over each of its storms: x-off-first.cpuprofile, x-on-first..., etc.
 *
 * A micro-measure beside it: the verifier alone (createVerifier on the same
 * key file, as the federation builds it), N tokens verified one after the
 * other: unseen, cached, and by a second verifier that loaded the first one's
 * persisted identities (a restart), in µs per token.
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import { performance as perfHooks } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { createVerifier, identityStoreFile, issueToken, loadOrCreateSigningKey, type SigningKey, type Verifier } from '../auth/index.js';
import { startFederation, type Federation, type FederationOptions } from '../server/federation.js';
import { silentLogger } from '../lib/log.js';
import type { AuthFleetCommand, AuthFleetReport, ClientKind } from './auth-storm-fleet.js';
import { ChildFleet } from './child-fleet.js';
import { startProfile } from './profile.js';
import { epochNow, sleep, waitUntil } from './wpk-harness.js';
import { median, round } from './stats.js';

const FLEET = fileURLToPath(new URL('./auth-storm-fleet.ts', import.meta.url));
/** The storms last a few hundred ms: poll finely. */
const POLL_MS = 2;
/** Client ids and subjects of the storm's nodes start with this. */
const PREFIX = 'as';

export interface AuthStormOptions {
  nodes: number;
  /** Measured off/on pairs. */
  runs: number;
  /** Discarded off/on pairs before them (JIT, caches, page cache). */
  warmup: number;
  /** CONNECTs in flight at most. */
  concurrency: number;
  /** The fleet's clients: mqtt.js, or a raw socket client (see auth-storm-fleet.ts). */
  client: ClientKind;
}

type Mode = 'off' | 'on';
type StormName = 'first' | 'reconnect' | 'restart';

interface StormResult {
  /** First CONNECT sent -> N-th CONNACK received (fleet side). */
  ms: number;
  cps: number;
  /** First CONNECT sent -> broker registered its N-th client (aedes `client` event, here). */
  brokerMs: number;
  /** CPU of this process (broker + hub) and of the fleet process over the storm, % of one core. */
  brokerCpuPct: number;
  fleetCpuPct: number;
  /** This process's event loop utilisation over the storm. */
  elu: number;
  /**
   * CPU of this process's main thread alone per connect, µs (Linux /proc, 10 ms ticks; NaN elsewhere):
   * what limits the broker where clients are remote and spare cores take libuv's and V8's helper threads.
   */
  mainCpuUsPerConnect: number;
  /** Signature checks (WebCrypto verify calls) in this process during the storm. */
  signatureChecks: number;
}

interface RunResult {
  mode: Mode;
  first: StormResult;
  reconnect: StormResult;
  restart: StormResult;
  /** Heartbeats: first sent -> hub counted all N. */
  heartbeatMs: number;
  heartbeatsAtHub: number;
  publishRefusals: number;
  connectsAccepted: number | undefined;
  authFailures: number;
  /** A CONNECT with a forged signature was refused (must be true with auth on, false off). */
  forgedRefused: boolean;
  /** Entries in keys/verified-tokens.json after the first federation stopped (0 with auth off). */
  persistedIdentities: number;
  mintMs: number;
}

/**
 * Signature checks made in this process so far: jose verifies through
 * WebCrypto's `crypto.subtle.verify`, counted here (bench-only instrumentation).
 */
let signatureChecks = 0;
{
  const subtle = globalThis.crypto.subtle;
  const verify = subtle.verify.bind(subtle);
  subtle.verify = ((...args: Parameters<SubtleCrypto['verify']>) => { signatureChecks += 1; return verify(...args); }) as SubtleCrypto['verify'];
}

/** The storm's client fleet in its own process (bench/auth-storm-fleet.ts). */
class Fleet extends ChildFleet<AuthFleetReport, AuthFleetCommand> {
  static spawn(): Promise<Fleet> {
    return ChildFleet.start((child) => new Fleet(child, 'auth fleet', 10_000), FLEET, [], 60_000);
  }
}

/** Sessions of the fleet's clients the broker holds now (the hub's own in-memory client excluded). */
function fleetSessions(fed: Federation): number {
  const clients = (fed.broker!.aedes as unknown as { clients: Record<string, unknown> }).clients;
  let n = 0;
  for (const id in clients) if (id.startsWith(`${PREFIX}-`)) n += 1;
  return n;
}

/** CPU time of this process's main thread so far, ms (Linux: /proc/self/task/<pid>/stat utime + stime). */
function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

function mint(key: SigningKey, ids: string[]): Promise<string[]> {
  return Promise.all(ids.map((id) => issueToken({ role: 'agent', subject: id, caps: ['monitoring'], ttlSeconds: 3600 }, key)));
}

async function stormOnce(
  fed: Federation, fleet: Fleet, ids: string[], tokens: string[], o: AuthStormOptions, profileFile: string | undefined,
): Promise<StormResult> {
  const n = ids.length;
  let registered = 0;
  let lastRegisteredAt = 0;
  const onClient = (client: { id: string }) => {
    if (!client.id.startsWith(`${PREFIX}-`)) return;
    registered += 1;
    lastRegisteredAt = epochNow();
  };
  const aedes = fed.broker!.aedes;
  aedes.on('client', onClient);
  const profile = await startProfile(profileFile);
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuMs();
  const elu0 = perfHooks.eventLoopUtilization();
  const checks0 = signatureChecks;
  const wall0 = performance.now();
  const r = await fleet.ask({
    cmd: 'storm', host: '127.0.0.1', port: fed.broker!.port!, ids, tokens, concurrency: o.concurrency, client: o.client, timeoutMs: 120_000,
  }, 'storm', 150_000);
  const cpu = process.cpuUsage(cpu0);
  const elu = perfHooks.eventLoopUtilization(elu0).utilization;
  const mainMs = mainThreadCpuMs() - main0;
  const wall = performance.now() - wall0;
  const checks = signatureChecks - checks0;
  await profile.stop();
  aedes.removeListener('client', onClient);
  if (r.failed > 0) throw new Error(`auth-storm: ${r.failed}/${n} clients not connected: ${r.failures.join('; ')}`);
  if (registered < n) throw new Error(`auth-storm: the broker registered ${registered}/${n} clients`);
  const ms = r.lastConnackAt - r.firstConnectAt;
  return {
    ms, cps: (n / ms) * 1000, brokerMs: lastRegisteredAt - r.firstConnectAt,
    // Over the whole exchange with the fleet (a little more than the storm): a ceiling, not the storm's own share.
    brokerCpuPct: ((cpu.user + cpu.system) / 1000 / wall) * 100,
    fleetCpuPct: (r.cpuMs / ms) * 100,
    elu,
    mainCpuUsPerConnect: (mainMs * 1000) / n,
    signatureChecks: checks,
  };
}

async function closeAll(fed: Federation, fleet: Fleet): Promise<void> {
  await fleet.ask({ cmd: 'close' }, 'closed', 60_000);
  await waitUntil(() => fleetSessions(fed) === 0, 30_000, 'the broker dropped every fleet session', POLL_MS);
}

async function persistedCount(dir: string): Promise<number> {
  try {
    const file = JSON.parse(await fs.readFile(identityStoreFile(dir, 'own'), 'utf8')) as { entries: Record<string, unknown> };
    return Object.keys(file.entries).length;
  } catch {
    return 0;
  }
}

async function oneRun(mode: Mode, fleet: Fleet, o: AuthStormOptions, profileBase?: string): Promise<RunResult> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-bench-auth-'));
  let fed: Federation | undefined;
  try {
    const ids = Array.from({ length: o.nodes }, (_, i) => `${PREFIX}-${i}`);
    // The key the federation will load from the same data dir (made here first). Not timed as part of a storm.
    const key = await loadOrCreateSigningKey(dir);
    const m0 = performance.now();
    const tokens = await mint(key, ids);
    const mintMs = performance.now() - m0;
    const fedOptions: FederationOptions = { mqttPort: 0, httpPort: 0, dataDir: dir, logger: silentLogger, ...(mode === 'on' ? { auth: {} } : {}) };
    fed = await startFederation(fedOptions);
    const prof = (storm: StormName) => (profileBase ? `${profileBase}-${mode}-${storm}.cpuprofile` : undefined);
    await sleep(200);

    const first = await stormOnce(fed, fleet, ids, tokens, o, prof('first'));

    // One allowed publish each: the node's own heartbeat.
    const f = fed;
    const hb0 = f.hub.counters().messages.heartbeat;
    const pub = await fleet.ask({ cmd: 'publish' }, 'published', 30_000);
    await waitUntil(() => f.hub.counters().messages.heartbeat - hb0 >= pub.sent, 30_000, `${pub.sent} heartbeats at the hub`, POLL_MS);
    const heartbeatMs = epochNow() - pub.firstAt;
    const heartbeatsAtHub = f.hub.counters().messages.heartbeat - hb0;

    await closeAll(fed, fleet);
    await sleep(200);
    const reconnect = await stormOnce(fed, fleet, ids, tokens, o, prof('reconnect'));
    await closeAll(fed, fleet);

    // A hub restart on the same data dir: the in-memory identity cache is gone, the persisted identities are not.
    const stats0 = fed.authStats;
    const count = (rec: Record<string, number | undefined> | undefined) => Object.values(rec ?? {}).reduce<number>((s, v) => s + (v ?? 0), 0);
    const before = { publishRefusals: count(stats0?.publishRefusals), connectsAccepted: stats0?.connectsAccepted, authFailures: count(stats0?.authFailures) };
    await fed.stop();
    fed = undefined;
    const persistedIdentities = await persistedCount(dir);
    fed = await startFederation(fedOptions);
    await sleep(200);
    const restart = await stormOnce(fed, fleet, ids, tokens, o, prof('restart'));
    await closeAll(fed, fleet);

    // With auth on, a CONNECT with a forged token must be refused (proof the checks ran); off, it is let in.
    const sigAt = tokens[0]!.lastIndexOf('.') + 1;
    const forged = `${tokens[0]!.slice(0, sigAt)}${'A'.repeat(tokens[0]!.length - sigAt)}`;
    const forgedRefused = await mqtt.connectAsync(fed.mqttUrl!, { clientId: ids[0], username: ids[0], password: forged, reconnectPeriod: 0, connectTimeout: 5000 })
      .then(async (c) => { await c.endAsync(true); return false; }, () => true);

    const stats = fed.authStats;
    if (mode === 'on' && stats === undefined) throw new Error('auth-storm: auth on but the federation has no auth stats');
    return {
      mode, first, reconnect, restart, heartbeatMs, heartbeatsAtHub, forgedRefused, persistedIdentities, mintMs,
      publishRefusals: before.publishRefusals + count(stats?.publishRefusals),
      connectsAccepted: stats === undefined ? undefined : (before.connectsAccepted ?? 0) + stats.connectsAccepted,
      authFailures: before.authFailures + count(stats?.authFailures),
    };
  } finally {
    await fed?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export async function authStorm(o: AuthStormOptions): Promise<Record<string, unknown>> {
  if (!Number.isInteger(o.nodes) || o.nodes < 1) throw new Error(`--nodes ${o.nodes}: give a positive integer`);
  const fleet = await Fleet.spawn();
  const runs: RunResult[] = [];
  const verify: VerifierAlone[] = [];
  try {
    for (let i = 0; i < o.warmup; i += 1) {
      await oneRun('off', fleet, o);
      await oneRun('on', fleet, o);
    }
    for (let i = 0; i < o.runs; i += 1) {
      runs.push(await oneRun('off', fleet, o));
      runs.push(await oneRun('on', fleet, o));
    }
    for (let i = 0; i < 3; i += 1) verify.push(await verifierAlone(o.nodes));
    const profileBase = process.env.BENCH_PROFILE?.replace(/\.cpuprofile$/, '');
    if (profileBase) {
      await oneRun('off', fleet, o, profileBase);
      await oneRun('on', fleet, o, profileBase);
    }
  } finally {
    await fleet.stop();
  }
  const off = runs.filter((r) => r.mode === 'off');
  const on = runs.filter((r) => r.mode === 'on');
  const storm = (name: StormName) => {
    const offCps = off.map((r) => r[name].cps);
    const onCps = on.map((r) => r[name].cps);
    // Same-run ratio: each on run against the off run just before it.
    const ratios = onCps.map((v, i) => v / offCps[i]!);
    const ratio = median(ratios);
    return {
      off_median_cps: Math.round(median(offCps)), on_median_cps: Math.round(median(onCps)),
      ratio_median: round(ratio, 3), jwt_cost_pct: round((1 - ratio) * 100, 1), target_met: 1 - ratio < 0.25,
      off_runs_cps: offCps.map(Math.round), on_runs_cps: onCps.map(Math.round), ratio_runs: ratios.map((v) => round(v, 3)),
      off_runs_ms: off.map((r) => round(r[name].ms)), on_runs_ms: on.map((r) => round(r[name].ms)),
      off_broker_ms: off.map((r) => round(r[name].brokerMs)), on_broker_ms: on.map((r) => round(r[name].brokerMs)),
      off_broker_cpu_pct: off.map((r) => Math.round(r[name].brokerCpuPct)), on_broker_cpu_pct: on.map((r) => Math.round(r[name].brokerCpuPct)),
      off_fleet_cpu_pct: off.map((r) => Math.round(r[name].fleetCpuPct)), on_fleet_cpu_pct: on.map((r) => Math.round(r[name].fleetCpuPct)),
      off_broker_elu: off.map((r) => round(r[name].elu, 2)), on_broker_elu: on.map((r) => round(r[name].elu, 2)),
      off_main_cpu_us_per_connect: off.map((r) => Math.round(r[name].mainCpuUsPerConnect)),
      on_main_cpu_us_per_connect: on.map((r) => Math.round(r[name].mainCpuUsPerConnect)),
      main_cpu_extra_us_per_connect_median: Math.round(median(on.map((r, i) => r[name].mainCpuUsPerConnect - off[i]![name].mainCpuUsPerConnect))),
      on_signature_checks: on.map((r) => r[name].signatureChecks),
    };
  };
  return {
    nodes: o.nodes, runs: o.runs, warmup_pairs: o.warmup, concurrency: o.concurrency, client: o.client,
    first_connect: storm('first'),
    reconnect: storm('reconnect'),
    restart_reconnect: storm('restart'),
    on_persisted_identities: on.map((r) => r.persistedIdentities),
    heartbeat: {
      off_runs_ms: off.map((r) => round(r.heartbeatMs)), on_runs_ms: on.map((r) => round(r.heartbeatMs)),
      off_median_ms: round(median(off.map((r) => r.heartbeatMs))), on_median_ms: round(median(on.map((r) => r.heartbeatMs))),
      at_hub_per_run: runs.map((r) => r.heartbeatsAtHub), on_publish_refusals: on.map((r) => r.publishRefusals),
    },
    on_connects_accepted: on.map((r) => r.connectsAccepted), on_auth_failures: on.map((r) => r.authFailures),
    forged_token_refused: { off: off.map((r) => r.forgedRefused), on: on.map((r) => r.forgedRefused) },
    mint_ms_median: round(median(runs.map((r) => r.mintMs))),
    verifier_alone_us: {
      first_median: round(median(verify.map((v) => v.firstUs))), cached_median: round(median(verify.map((v) => v.cachedUs)), 2),
      persisted_median: round(median(verify.map((v) => v.persistedUs)), 2),
      first_runs: verify.map((v) => round(v.firstUs)), cached_runs: verify.map((v) => round(v.cachedUs, 2)), persisted_runs: verify.map((v) => round(v.persistedUs, 2)),
      // 200 in flight: CPU per new token, main thread / whole process (10 ms ticks on the main thread: 2000 tokens give ±5 µs).
      burst_main_cpu_us: verify.map((v) => Math.round(v.burst.mainUs)), burst_process_cpu_us: verify.map((v) => Math.round(v.burst.processUs)),
    },
  };
}

interface VerifierAlone { firstUs: number; cachedUs: number; persistedUs: number; burst: BurstCpu }
interface BurstCpu { mainUs: number; processUs: number }

/**
 * CPU per token of `verifier` over `tokens` (all new to it), 200 in flight as
 * in a storm: of the main thread (what limits the broker) and of the whole
 * process. No clients, no broker.
 */
async function burstCpu(verifier: Verifier, tokens: readonly string[], inFlight = 200): Promise<BurstCpu> {
  const main0 = mainThreadCpuMs();
  const cpu0 = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < tokens.length) await verifier.verify(tokens[next++]!);
  }));
  const cpu = process.cpuUsage(cpu0);
  return { mainUs: ((mainThreadCpuMs() - main0) * 1000) / tokens.length, processUs: (cpu.user + cpu.system) / tokens.length };
}

/**
 * The verifier alone, as prepareJwtAuth builds it (the key file and its
 * identity store), µs per token: unseen, cached, then in a second verifier
 * that loaded what the first persisted (a restart: no signature checks).
 */
async function verifierAlone(n: number): Promise<VerifierAlone> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-bench-verify-'));
  try {
    const key = await loadOrCreateSigningKey(dir);
    const tokens = await mint(key, Array.from({ length: n }, (_, i) => `${PREFIX}-${i}`));
    const options = { jwksFile: key.jwksFile, logger: silentLogger, identityStore: identityStoreFile(dir, 'own') };
    const verifier = await createVerifier(options);
    const pass = async (v: Verifier) => {
      const t0 = performance.now();
      for (const token of tokens) await v.verify(token);
      return ((performance.now() - t0) * 1000) / n;
    };
    const firstUs = await pass(verifier);
    const cachedUs = await pass(verifier);
    await verifier.close();
    const restarted = await createVerifier(options);
    const persistedUs = await pass(restarted);
    await restarted.close();
    const burst = await burstCpu(await createVerifier({ jwksFile: key.jwksFile, logger: silentLogger, identityCacheSize: 0 }), tokens);
    return { firstUs, cachedUs, persistedUs, burst };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
