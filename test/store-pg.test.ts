/**
 * The PostgreSQL store against a real server: the one store contract the
 * lowdb files pass too, then what only this store has (migrations, writes
 * as changes, errors that name the database but never the password).
 */
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { isEdgefedError } from '../lib/errors.js';
import { Registry } from '../hub/registry.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../hub/store/pg/migrations.js';
import { PgStore } from '../hub/store/pg/store.js';
import { newExecution, newWpk, DEFAULT_WPK } from '../hub/wpk/model.js';
import { storeContract } from './helpers/store-contract.js';
import { PG_PASSWORD, sharedPostgres } from './helpers/postgres.js';

storeContract('postgres', async () => {
  const url = await (await sharedPostgres()).createDatabase('contract');
  const opened: PgStore[] = [];
  const open = () => { const s = new PgStore({ url }); opened.push(s); return s; };
  return { store: open(), reopen: open, close: async () => { await Promise.all(opened.map((s) => s.close())); } };
});

interface Ctx { stores: PgStore[]; url: string }
const test = suite<Ctx>('postgres store', { stores: [], url: '' });
test.before.each(async (ctx) => { ctx.stores = []; ctx.url = await (await sharedPostgres()).createDatabase('pgstore'); });
test.after.each(async (ctx) => { await Promise.all(ctx.stores.map((s) => s.close())); });

function open(ctx: Ctx, url = ctx.url): PgStore {
  const s = new PgStore({ url, connectTimeoutMs: 2000 });
  ctx.stores.push(s);
  return s;
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { return (await c.query<T>(text, params)).rows; } finally { await c.end(); }
}

test('migrations run once, at the first load, and record who ran them', async (ctx) => {
  const a = open(ctx);
  await a.load();
  assert.equal([...a.migrated], MIGRATIONS.map((m) => m.version));
  const b = open(ctx);
  await b.load();
  assert.equal([...b.migrated], [], 'a current schema is left alone');
  const rows = await sql<{ version: number }>(ctx.url, 'SELECT version FROM edgefed_schema');
  assert.equal(rows.map((r) => r.version), [SCHEMA_VERSION]);
});

test('a database from a newer edgefed stops the load and is not changed', async (ctx) => {
  await open(ctx).load();
  await sql(ctx.url, "INSERT INTO edgefed_schema (version, name, edgefed_version) VALUES ($1, 'future', '9.0.0')", [SCHEMA_VERSION + 1]);
  await sql(ctx.url, 'CREATE TABLE marker (x int)');
  const err = await open(ctx).load().then(() => undefined, (e: unknown) => e);
  assert.ok(isEdgefedError(err, 'EDGEFED_ERR_STORE_VERSION'), String(err));
  assert.match(String(err), /newer than this edgefed/);
  assert.match(String(err), /9\.0\.0/);
  const tables = await sql<{ n: string }>(ctx.url, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'marker'");
  assert.is(tables[0]?.n, '1');
});

test('an execution update writes that execution, not the whole work package', async (ctx) => {
  const s = open(ctx);
  await s.load();
  const w = newWpk({ capability: 'm', action: 'echo', mode: 'all' }, 1000, DEFAULT_WPK);
  w.executions = Array.from({ length: 200 }, (_, i) => newExecution(`n-${i}`, 'b', 1, 1000));
  await s.writeWpks({ upserted: [w], removed: [] });
  const before = await sql<{ xmin: string; node_id: string }>(ctx.url, 'SELECT xmin::text, node_id FROM edgefed_executions');
  w.executions[7]!.state = 'running';
  w.executions[7]!.updated_at = 2000;
  await s.writeWpks({ upserted: [w], removed: [] });
  const after = await sql<{ xmin: string; node_id: string }>(ctx.url, 'SELECT xmin::text, node_id FROM edgefed_executions');
  const moved = after.filter((r) => before.find((b) => b.node_id === r.node_id)?.xmin !== r.xmin).map((r) => r.node_id);
  assert.equal(moved, ['n-7'], 'only the changed execution row was written');
  const [again] = (await open(ctx).load()).wpks;
  assert.is(again?.executions.length, 200);
  assert.is(again?.executions[7]?.state, 'running');
  assert.equal(again?.executions.map((e) => e.node_id), w.executions.map((e) => e.node_id), 'in their order');
});

test('a failed batch is sent whole again: nothing is taken as written before the commit', async (ctx) => {
  const s = open(ctx);
  await s.load();
  const w = newWpk({ capability: 'm', action: 'echo', mode: 'all' }, 1000, DEFAULT_WPK);
  w.executions = [newExecution('n-1', 'b', 1, 1000)];
  await s.writeWpks({ upserted: [w], removed: [] });
  await sql(ctx.url, 'ALTER TABLE edgefed_executions ADD CONSTRAINT no_running CHECK (state <> \'running\')');
  w.executions[0]!.state = 'running';
  w.executions[0]!.updated_at = 2000;
  const err = await s.writeWpks({ upserted: [w], removed: [] }).then(() => undefined, (e: unknown) => e);
  assert.ok(isEdgefedError(err, 'EDGEFED_ERR_STORE_DOWN'), String(err));
  await sql(ctx.url, 'ALTER TABLE edgefed_executions DROP CONSTRAINT no_running');
  await s.writeWpks({ upserted: [w], removed: [] });
  const [again] = (await open(ctx).load()).wpks;
  assert.is(again?.executions[0]?.state, 'running', 'the retry wrote the execution the failed batch held');
});

test('liveness reaches the database without rewriting the record', async (ctx) => {
  const s = open(ctx);
  await s.load();
  const r = new Registry().applyRegistration({ node_id: 'a', capabilities: ['m', 'x'], boot_id: 'b', ts: 1 }, { now: 1, live: true }).record;
  await s.writeNodes({ upserted: [r], removed: [], liveness: [] });
  await s.writeNodes({ upserted: [], removed: [], liveness: [{ node_id: 'a', last_seen: 99, load: 0.5, running_wpks: 1 }] });
  const [row] = await sql<{ caps: string[]; record_seen: number; last_seen: string }>(ctx.url, "SELECT capabilities AS caps, (record->>'last_seen')::int AS record_seen, last_seen FROM edgefed_nodes");
  assert.equal(row?.caps, ['m', 'x'], 'capabilities are a column, for queries');
  assert.is(row?.last_seen, '99');
  assert.is(row?.record_seen, 1);
});

test('wrong credentials, a wrong database, nothing listening: clear errors, never the password', async (ctx) => {
  const srv = await sharedPostgres();
  const cases: Array<[string, string, RegExp]> = [
    [srv.url('postgres').replace(PG_PASSWORD, 'wrong-pw'), 'EDGEFED_ERR_STORE_AUTH', /refused the credentials/],
    [srv.url('no_such_db'), 'EDGEFED_ERR_STORE_CONNECT', /does not exist.*createdb/],
    [`postgres://postgres:${PG_PASSWORD}@127.0.0.1:1/x`, 'EDGEFED_ERR_STORE_CONNECT', /connection refused/],
  ];
  for (const [url, code, text] of cases) {
    const err = await open(ctx, url).load().then(() => undefined, (e: unknown) => e);
    assert.ok(isEdgefedError(err, code as `EDGEFED_ERR_${string}`), `${url}: ${String(err)}`);
    assert.match(String(err), text);
    assert.not.match(String(err), PG_PASSWORD);
    assert.not.match(String(err), 'wrong-pw');
  }
  assert.throws(() => new PgStore({ url: 'postgres://127.0.0.1:5432' }), /names no database/);
});

test('the lease: one holder at a time, a new epoch at every takeover, renewals only by the holder', async (ctx) => {
  const s = open(ctx);
  await s.prepare();
  const a = await s.lease.acquire('hub-a', 300, { api_url: 'http://a' });
  assert.equal(a, { acquired: true, epoch: 1 });
  const b = await s.lease.acquire('hub-b', 300, {});
  assert.is(b.acquired, false, 'not while hub-a holds it');
  assert.is(!b.acquired && b.current?.holder, 'hub-a');
  assert.is(!b.acquired && b.current?.info.api_url, 'http://a');
  assert.ok(await s.lease.renew('hub-a', 1, 300, {}));
  assert.not.ok(await s.lease.renew('hub-b', 1, 300, {}), 'only the holder renews');
  await new Promise((r) => setTimeout(r, 350));
  assert.not.ok(await s.lease.renew('hub-a', 1, 300, {}), 'an expired lease is not renewed, even by its holder');
  const b2 = await s.lease.acquire('hub-b', 300, {});
  assert.equal(b2, { acquired: true, epoch: 2 }, 'an expired lease is taken, under a new epoch');
  assert.not.ok(await s.lease.renew('hub-a', 1, 300, {}), 'the old holder cannot renew it back');
  await s.lease.release('hub-b', 2);
  assert.equal(await s.lease.acquire('hub-a', 300, {}), { acquired: true, epoch: 3 }, 'a released lease is free at once');
});

test('fencing: a store writing under an older epoch is refused and told, and writes nothing', async (ctx) => {
  const control = open(ctx);
  await control.prepare();
  const got = await control.lease.acquire('hub-a', 200, {});
  assert.ok(got.acquired);
  const old = open(ctx);
  await old.load();
  let fenced = 0;
  old.fence(1, () => { fenced += 1; });
  const n = new Registry().applyRegistration({ node_id: 'a', capabilities: ['m'], boot_id: 'b', ts: 1 }, { now: 1, live: true }).record;
  await old.writeNodes({ upserted: [n], removed: [], liveness: [] });
  await new Promise((r) => setTimeout(r, 250));
  assert.ok((await control.lease.acquire('hub-b', 5000, {})).acquired, 'hub-b takes over');
  const err = await old.writeNodes({ upserted: [{ ...n, status: 'offline' }], removed: [], liveness: [] }).then(() => undefined, (e: unknown) => e);
  assert.ok(isEdgefedError(err, 'EDGEFED_ERR_FENCED'), String(err));
  assert.is(fenced, 1);
  const [row] = (await open(ctx).load()).nodes;
  assert.is(row?.status, 'active', 'the fenced write changed nothing');
});

test.run();
