/**
 * The hub on a real PostgreSQL: kill -9 loses nothing that was acknowledged,
 * a database that goes away leaves the hub serving from memory and saying
 * so, and catching up when it is back; bad URLs stop `edgefed start` with
 * one clear line that never shows the password.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Federation } from '../server/federation.js';
import type { ApiHealth } from '../lib/api.js';
import { topics } from '../lib/topics.js';
import { CLI_ARGS } from './helpers/cli.js';
import { api, closeAll, device, federation, post, registration } from './helpers/federation.js';
import { capturingLogger, type LogLine } from './helpers/logs.js';
import { PG_PASSWORD, sharedPostgres, startPostgres, type PgServer } from './helpers/postgres.js';
import { kill9, spawnHub, stopGracefully, type HubProcess } from './helpers/process.js';
import { waitFor, withTimeout } from './helpers/time.js';

const run = promisify(execFile);
const t = topics();

async function count(url: string, text: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { return Number((await c.query<{ n: string }>(text)).rows[0]?.n); } finally { await c.end(); }
}

interface Ctx { dir: string; procs: HubProcess[]; clients: MqttClient[]; feds: Federation[]; servers: PgServer[] }
const test = suite<Ctx>('hub on PostgreSQL', { dir: '', procs: [], clients: [], feds: [], servers: [] });
test.before.each(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-hubpg-'));
  ctx.procs = []; ctx.clients = []; ctx.feds = []; ctx.servers = [];
});
test.after.each(async (ctx) => {
  await closeAll(...ctx.clients);
  for (const p of ctx.procs) await stopGracefully(p).catch(() => p.child.kill('SIGKILL'));
  for (const f of ctx.feds) await f.stop().catch(() => undefined);
  for (const s of ctx.servers) await s.destroy();
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

test('kill -9: registrations and an acknowledged WPK survive; nodes come back stale', (ctx) => withTimeout((async () => {
  const url = await (await sharedPostgres()).createDatabase('crash');
  const hub1 = await spawnHub(['--data-dir', ctx.dir, '--store', url, '--lease-ttl', '3s']);
  ctx.procs.push(hub1);
  const dev = await withTimeout(mqtt.connectAsync(hub1.mqttUrl, { clientId: 'fleet-sim', reconnectPeriod: 0 }), 5000, 'connect');
  ctx.clients.push(dev);
  const ids = Array.from({ length: 20 }, (_, i) => `node-${i}`);
  for (const id of ids) await dev.publishAsync(t.registration(id), JSON.stringify(registration(id)), { qos: 1, retain: true });
  const created = await fetch(`${hub1.httpUrl}/federation/wpk`, post({ capability: 'none-such', action: 'echo', deadline: Date.now() + 600_000 }));
  assert.is(created.status, 201, 'the WPK is acknowledged once it is in the database');
  const { wpk_id: wpkId } = (await created.json()) as { wpk_id: string };
  await waitFor(async () => (await count(url, 'SELECT count(*) AS n FROM edgefed_nodes')) === 20, { timeoutMs: 5000, label: '20 rows' });
  await kill9(hub1);
  ctx.procs = [];
  await closeAll(dev);
  ctx.clients = [];

  const hub2 = await spawnHub(['--data-dir', ctx.dir, '--store', url, '--lease-ttl', '3s']);
  ctx.procs.push(hub2);
  // The dead hub's lease runs out first (3 s): until then the new one is a standby.
  await waitFor(async () => ((await (await fetch(`${hub2.httpUrl}/health`)).json()) as ApiHealth).ha?.role === 'active', { timeoutMs: 8000, label: 'takeover' });
  const nodes = ((await (await fetch(`${hub2.httpUrl}/federation/nodes`)).json()) as { nodes: Array<{ status: string }> }).nodes;
  assert.is(nodes.length, 20);
  assert.ok(nodes.every((n) => n.status === 'stale'), 'restored nodes are stale until they re-announce');
  const wpk = await fetch(`${hub2.httpUrl}/federation/wpk/${wpkId}`);
  assert.is(wpk.status, 200, 'the acknowledged WPK is there after kill -9');
  assert.is(((await wpk.json()) as { state: string }).state, 'pending');
})(), 60_000, 'kill -9 on postgres'));

test('the database goes away: the hub serves from memory, says so once, and catches up', (ctx) => withTimeout((async () => {
  const server = await startPostgres();
  ctx.servers.push(server);
  const url = await server.createDatabase('outage');
  const lines: LogLine[] = [];
  const fed = await federation({
    store: url, logger: capturingLogger(lines),
    hub: { storeCheckMs: 100, flush: { soonMs: 5, lazyMs: 50, retryMinMs: 50, retryMaxMs: 300 } },
  });
  ctx.feds.push(fed);
  const dev = await device(fed, 'fleet');
  ctx.clients.push(dev);
  await dev.publishAsync(t.registration('before'), JSON.stringify(registration('before')), { qos: 1, retain: true });
  await waitFor(async () => (await count(url, 'SELECT count(*) AS n FROM edgefed_nodes')) === 1, { timeoutMs: 3000, label: 'first row' });

  await server.stop();
  for (const id of ['during-1', 'during-2']) await dev.publishAsync(t.registration(id), JSON.stringify(registration(id)), { qos: 1, retain: true });
  const down = await waitFor(async () => {
    const h = (await api<ApiHealth>(fed, '/health')).body;
    return h.store.state === 'down' ? h : undefined;
  }, { timeoutMs: 5000, label: '/health says the store is down' });
  assert.is(down.status, 'degraded');
  assert.is(down.store.kind, 'postgres');
  assert.not.match(JSON.stringify(down), PG_PASSWORD);
  const metrics = await (await fetch(`${fed.api.url}/metrics`)).text();
  assert.match(metrics, /^edgefed_store_up 0$/m, JSON.stringify(lines.filter((l) => /store/.test(String(l.msg))), null, 1));
  const listed = (await api<{ nodes: unknown[] }>(fed, '/federation/nodes')).body.nodes;
  assert.is(listed.length, 3, 'the hub still serves what it holds, new nodes included');
  const refused = await api<{ error: { code: string } }>(fed, '/federation/wpk', post({ capability: 'monitoring', action: 'echo' }));
  assert.is(refused.status, 503, 'a WPK cannot be acknowledged while it cannot be written');

  await new Promise((r) => setTimeout(r, 600)); // several retries and checks fail meanwhile
  await server.start();
  await waitFor(async () => (await api<ApiHealth>(fed, '/health')).body.store.state === 'up', { timeoutMs: 5000, label: 'store up again' });
  await waitFor(async () => (await count(url, 'SELECT count(*) AS n FROM edgefed_nodes')) === 3, { timeoutMs: 5000, label: 'caught up' });
  const outage = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('store write failed'));
  assert.is(outage.length, 1, 'the outage is logged once, not per retry');
  assert.is(lines.filter((l) => l.msg === 'store is back; pending changes are being written').length, 1);
  assert.ok((await api<ApiHealth>(fed, '/health')).body.store.failures >= 2, 'every failed attempt is counted');
  assert.not.match(JSON.stringify(lines), PG_PASSWORD, 'the password is in no log line');
})(), 60_000, 'database outage'));

test('edgefed start: a bad store stops it with one clear line and no password', (ctx) => withTimeout((async () => {
  const srv = await sharedPostgres();
  const cases: Array<[string, RegExp]> = [
    [srv.url('postgres').replace(PG_PASSWORD, 'not-the-pw'), /EDGEFED_ERR_STORE_AUTH.*refused the credentials/],
    [`postgres://postgres:${PG_PASSWORD}@127.0.0.1:1/edgefed`, /EDGEFED_ERR_STORE_CONNECT.*connection refused/],
    ['./elsewhere', /EDGEFED_ERR_STORE_URL.*postgres:\/\//],
  ];
  for (const [store, text] of cases) {
    const out = await run(process.execPath, [...CLI_ARGS, 'start', '--mqtt-port', '0', '--http-port', '0', '--data-dir', ctx.dir, '--store', store], { timeout: 20_000 })
      .then(() => ({ code: 0, all: '' }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, all: e.stdout + e.stderr }));
    assert.is.not(out.code, 0, `${store} must stop the hub`);
    assert.match(out.all, text);
    assert.not.match(out.all, PG_PASSWORD);
    assert.not.match(out.all, 'not-the-pw');
    assert.not.match(out.all, /registry loaded/, 'no silent fallback to files');
  }
})(), 60_000, 'bad stores'));

test.run();
