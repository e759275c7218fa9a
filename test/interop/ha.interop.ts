/**
 * Active/standby hubs as an operator runs them: two `edgefed start
 * --store postgres://... --broker-url ...` processes on a real mosquitto and
 * a real PostgreSQL, 20 real agents in a process of their own. The active
 * hub dies (kill -9) or hangs (SIGSTOP past its lease) with work in flight;
 * the standby takes over within TTL + 5 s and every WPK ends `succeeded`
 * once, on attempt 1, run once (the agents write down every run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiHealth } from '../../lib/api.js';
import { sharedPostgres } from '../helpers/postgres.js';
import { waitFor, withTimeout } from '../helpers/time.js';
import { kill9, spawnHub, startMosquitto, stopHub, tempDir, type HubProcess } from './helpers.js';

const FLEET = fileURLToPath(new URL('./fleet/ha-agents.ts', import.meta.url));
const TTL_S = 3;

interface Ctx { dir: string; hubs: HubProcess[]; fleet?: ChildProcess; mosquitto?: { port: number; stop(): Promise<void> } }
const test = suite<Ctx>('interop: active/standby hubs on PostgreSQL', { dir: '', hubs: [] });
test.before.each(async (ctx) => { ctx.dir = await tempDir('edgefed-ha-'); ctx.hubs = []; ctx.fleet = undefined; });
test.after.each(async (ctx) => {
  if (ctx.fleet && ctx.fleet.exitCode === null) { ctx.fleet.kill('SIGKILL'); }
  for (const h of ctx.hubs) { h.child.kill('SIGCONT'); await stopHub(h); }
  await ctx.mosquitto?.stop();
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await withTimeout(fetch(url, init), 5000, url);
  return { status: res.status, body: (await res.json()) as T };
}

const role = async (h: HubProcess) => (await json<ApiHealth>(`${h.httpUrl}/health`)).body.ha?.role;

async function setUp(ctx: Ctx): Promise<{ a: HubProcess; b: HubProcess; runs: string }> {
  ctx.mosquitto = await startMosquitto();
  const broker = `mqtt://127.0.0.1:${ctx.mosquitto.port}`;
  const store = await (await sharedPostgres()).createDatabase('ha_interop');
  const hub = async (id: string) => {
    const h = await spawnHub(['--broker-url', broker, '--store', store, '--data-dir', path.join(ctx.dir, id), '--hub-id', id, '--lease-ttl', `${TTL_S}s`]);
    ctx.hubs.push(h);
    return h;
  };
  const a = await hub('hub-a');
  assert.is(await role(a), 'active');
  const b = await hub('hub-b');
  assert.is(await role(b), 'standby');
  const runs = path.join(ctx.dir, 'runs.txt');
  await fs.writeFile(runs, '');
  ctx.fleet = spawn(process.execPath, ['--import', 'tsx', FLEET], { env: { ...process.env, BROKER: broker, AGENTS: '20', RUNS_FILE: runs }, stdio: 'ignore' });
  await waitFor(async () => (await json<{ nodes: Array<{ status: string }> }>(`${a.httpUrl}/federation/nodes?status=active`)).body.nodes.length === 20,
    { timeoutMs: 20_000, intervalMs: 200, label: '20 agents active' });
  return { a, b, runs };
}

async function createWork(hub: HubProcess, n: number, ms: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const r = await json<{ wpk_id: string }>(`${hub.httpUrl}/federation/wpk`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ capability: 'work', action: 'work', params: { ms }, timeout_ms: 60_000 }),
    });
    assert.is(r.status, 201);
    ids.push(r.body.wpk_id);
  }
  return ids;
}

interface WpkView { state: string; attempt: number; executions: unknown[] }
const wpk = async (hub: HubProcess, id: string) => (await json<WpkView>(`${hub.httpUrl}/federation/wpk/${id}`)).body;

/** Every WPK ended succeeded on attempt 1 with one execution, and the agents ran each exactly once. */
async function assertRanOnce(hub: HubProcess, ids: string[], runsFile: string): Promise<void> {
  await waitFor(async () => {
    for (const id of ids) if ((await wpk(hub, id)).state !== 'succeeded') return false;
    return true;
  }, { timeoutMs: 40_000, intervalMs: 250, label: `all ${ids.length} WPKs succeeded` });
  for (const id of ids) {
    const w = await wpk(hub, id);
    assert.equal([w.attempt, w.executions.length], [1, 1], `${id} ran on one attempt`);
  }
  const lines = (await fs.readFile(runsFile, 'utf8')).trim().split('\n');
  const perWpk = new Map<string, number>();
  for (const l of lines) perWpk.set(l.split(' ')[0]!, (perWpk.get(l.split(' ')[0]!) ?? 0) + 1);
  assert.equal([...perWpk.values()].filter((n) => n !== 1), [], 'no work ran twice');
  assert.is(perWpk.size, ids.length, 'every WPK ran');
}

test('kill -9 of the active hub with 50 WPKs in flight on 20 agents: taken over, each run once', async (ctx) => withTimeout((async () => {
  const { a, b, runs } = await setUp(ctx);
  const ids = await createWork(a, 50, 4000);
  await waitFor(async () => {
    for (const id of ids) if ((await wpk(a, id)).state !== 'running') return false;
    return true;
  }, { timeoutMs: 10_000, intervalMs: 100, label: '50 running' });
  const t0 = Date.now();
  await kill9(a);
  await waitFor(async () => (await role(b)) === 'active', { timeoutMs: (TTL_S + 5) * 1000, intervalMs: 100, label: 'standby took over within TTL + 5 s' });
  const tookMs = Date.now() - t0;
  assert.ok(tookMs <= (TTL_S + 5) * 1000, `took over in ${tookMs} ms`);
  await assertRanOnce(b, ids, runs);
})(), 120_000, 'kill -9 takeover'));

test('SIGSTOP past the lease, then SIGCONT: the old hub stands by and acts no more', async (ctx) => withTimeout((async () => {
  const { a, b, runs } = await setUp(ctx);
  const ids = await createWork(a, 10, 6000);
  await waitFor(async () => (await wpk(a, ids[9]!)).state === 'running', { timeoutMs: 10_000, intervalMs: 100, label: 'running' });
  a.child.kill('SIGSTOP');
  await waitFor(async () => (await role(b)) === 'active', { timeoutMs: (TTL_S + 5) * 1000, intervalMs: 100, label: 'standby took over' });
  const linesBefore = a.lines.length;
  a.child.kill('SIGCONT');
  await waitFor(async () => (await role(a)) === 'standby', { timeoutMs: 5000, intervalMs: 100, label: 'the old hub stood down' });
  await assertRanOnce(b, ids, runs);
  const after = a.lines.slice(linesBefore).join('\n');
  assert.match(after, /lost its lease/);
  assert.not.match(after, /hub connected to the broker/, 'it did not take the session back');
  assert.is(await role(b), 'active', 'the successor is still active');
})(), 120_000, 'SIGSTOP'));

test.run();
