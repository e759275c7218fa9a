/**
 * The database's disk fills up while the hub runs: writes fail with
 * PostgreSQL's disk_full, the hub says so (EDGEFED_ERR_STORE_FULL in
 * /health) and keeps serving from memory, and once space is freed it
 * writes everything it held. The database's tables live on a 4 MB tmpfs
 * (a tablespace), so only they run out; this needs root to mount it, as CI
 * runs.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiHealth } from '../lib/api.js';
import { topics } from '../lib/topics.js';
import { api, device, federation, registration } from './helpers/federation.js';
import { startPostgres } from './helpers/postgres.js';
import { bounded } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

const t = topics();

async function count(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { return Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM edgefed_nodes')).rows[0]?.n); } finally { await c.end(); }
}

test('a full disk: the hub keeps serving, says why, and writes everything once there is room', bounded(async (scope) => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs for the database\'s tables: run it as root (CI does)');
  const srv = await startPostgres();
  scope.defer(() => srv.destroy());
  const small = fs.mkdtempSync(path.join(os.tmpdir(), 'edgefed-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', small]);
  scope.defer(() => { execFileSync('umount', ['-l', small]); fs.rmSync(small, { recursive: true, force: true }); });
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  fs.chownSync(small, uid, uid);
  const admin = new pg.Client({ connectionString: srv.url('postgres') });
  await admin.connect();
  await admin.query(`CREATE TABLESPACE small LOCATION '${small}'`);
  await admin.query('CREATE DATABASE fulldb TABLESPACE small');
  await admin.end();
  const url = srv.url('fulldb');

  const fed = await federation({ store: url, hub: { storeCheckMs: 100, flush: { soonMs: 5, lazyMs: 50, retryMinMs: 50, retryMaxMs: 200 } } });
  scope.defer(() => fed.stop());
  // Leave the tables ~200 KB once the hub has created them.
  const free = Number(execFileSync('df', ['--output=avail', '-B1', small], { encoding: 'utf8' }).split('\n')[1]);
  const filler = path.join(small, 'filler');
  fs.writeFileSync(filler, Buffer.alloc(Math.max(0, free - 200 * 1024)));
  const dev = await device(fed, 'fleet');
  scope.defer(() => dev.endAsync(true));
  const n = 1500;
  for (let i = 0; i < n; i += 1) {
    const labels = { a: randomBytes(60).toString('hex'), b: randomBytes(60).toString('hex') };
    await dev.publishAsync(t.registration(`n-${i}`), JSON.stringify(registration(`n-${i}`, { labels })), { qos: 1, retain: true });
  }
  const full = await waitFor(async () => {
    const h = (await api<ApiHealth>(fed, '/health')).body;
    return h.store.state === 'down' ? h : undefined;
  }, { timeoutMs: 10_000, label: 'the store reports the full disk' });
  assert.match(full.store.last_error ?? "", /EDGEFED_ERR_STORE_FULL: .* is out of disk space/, full.store.last_error ?? "");
  assert.is(full.status, 'degraded');
  assert.is((await api<{ nodes: unknown[] }>(fed, '/federation/nodes')).body.nodes.length, n, 'every node is served from memory');
  assert.ok(await count(url) < n, 'the database could not take them all');

  fs.rmSync(filler);
  await waitFor(async () => (await api<ApiHealth>(fed, '/health')).body.store.state === 'up', { timeoutMs: 10_000, label: 'store up again' });
  await waitFor(async () => (await count(url)) === n, { timeoutMs: 10_000, label: 'every node written once there is room' });
}, { timeoutMs: 90_000 }));

test.run();
