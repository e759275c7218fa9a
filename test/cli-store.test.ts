/**
 * `edgefed store migrate`: a deployment's files copied into a real
 * PostgreSQL, counted, idempotent, and refused while a hub holds the dir.
 * Then a hub on `--store` serves what the files held.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { PgStore } from '../hub/store/pg/store.js';
import { topics } from '../lib/topics.js';
import { CLI_ARGS } from './helpers/cli.js';
import { api, closeAll, device, federation, post, registration } from './helpers/federation.js';
import { PG_PASSWORD, sharedPostgres } from './helpers/postgres.js';
import { waitFor, withTimeout } from './helpers/time.js';

const run = promisify(execFile);
const t = topics();

interface Ctx { dir: string }
const test = suite<Ctx>('edgefed store migrate', { dir: '' });
test.before.each(async (ctx) => { ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-migrate-')); });
test.after.each(async (ctx) => { await fs.rm(ctx.dir, { recursive: true, force: true }); });

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return run(process.execPath, [...CLI_ARGS, ...args], { timeout: 30_000 }).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );
}

/** A hub on files with three nodes and one WPK, stopped cleanly. */
async function filesDeployment(dir: string): Promise<string> {
  const fed = await federation({ dataDir: dir });
  try {
    const dev = await device(fed, 'fleet');
    for (const id of ['a', 'b', 'c']) await dev.publishAsync(t.registration(id), JSON.stringify(registration(id)), { qos: 1, retain: true });
    await waitFor(async () => (await api<{ nodes: unknown[] }>(fed, '/federation/nodes')).body.nodes.length === 3, { label: '3 nodes' });
    const created = await api<{ wpk_id: string }>(fed, '/federation/wpk', post({ capability: 'nobody-has-it', action: 'echo' }));
    await closeAll(dev);
    return created.body.wpk_id;
  } finally {
    await fed.stop();
  }
}

test('copies nodes and WPKs, counts them, and a second run changes nothing', (ctx) => withTimeout((async () => {
  const wpkId = await filesDeployment(ctx.dir);
  const url = await (await sharedPostgres()).createDatabase('migrate');
  const first = await cli(['store', 'migrate', '--from', ctx.dir, '--to', url, '--json']);
  assert.is(first.code, 0, first.err);
  const r1 = JSON.parse(first.out) as { nodes: { copied: number; new: number }; wpks: { copied: number; new: number }; to: string };
  assert.equal([r1.nodes.copied, r1.nodes.new, r1.wpks.copied, r1.wpks.new], [3, 3, 1, 1]);
  assert.not.match(first.out + first.err, PG_PASSWORD, 'the password is not printed');
  const second = await cli(['store', 'migrate', '--from', ctx.dir, '--to', url]);
  assert.is(second.code, 0, second.err);
  assert.match(second.out, /nodes\s+3 \(0 new, 3 already there/);
  assert.match(second.out, /edgefed start --store/);

  const store = new PgStore({ url });
  try {
    const state = await store.load();
    assert.equal(state.nodes.map((n) => n.node_id).sort(), ['a', 'b', 'c']);
    assert.equal(state.wpks.map((w) => w.wpk_id), [wpkId]);
  } finally {
    await store.close();
  }
  const fed = await federation({ dataDir: ctx.dir, store: url });
  try {
    const listed = (await api<{ nodes: Array<{ node_id: string }> }>(fed, '/federation/nodes')).body.nodes;
    assert.equal(listed.map((n) => n.node_id), ['a', 'b', 'c'], 'a hub on --store serves what the files held');
  } finally {
    await fed.stop();
  }
})(), 60_000, 'migrate'));

test('refuses a dir a hub is running on, and a dir without a registry', (ctx) => withTimeout((async () => {
  const url = await (await sharedPostgres()).createDatabase('migrate');
  const empty = await cli(['store', 'migrate', '--from', ctx.dir, '--to', url]);
  assert.is.not(empty.code, 0);
  assert.match(empty.err, /holds no registry\.json; --from is the hub's --data-dir/);
  await filesDeployment(ctx.dir);
  const fed = await federation({ dataDir: ctx.dir });
  try {
    const busy = await cli(['store', 'migrate', '--from', ctx.dir, '--to', url]);
    assert.is.not(busy.code, 0);
    assert.match(busy.err, /edgefed store migrate: .*(lock|running|in use)/i);
  } finally {
    await fed.stop();
  }
  const store = new PgStore({ url });
  try { assert.equal((await store.load()).nodes, [], 'nothing was copied'); } finally { await store.close(); }
})(), 60_000, 'migrate refusals'));

test.run();
