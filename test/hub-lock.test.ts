/** The data-dir lock: one live hub per directory, takeover of dead owners, no double ownership in a race. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lockDataDir, LOCK_FILE } from '../hub/lock.js';
import { withTimeout } from './helpers/time.js';

const test = suite<{ dir: string }>('hub: data-dir lock', { dir: '' });
test.before.each(async (ctx) => { ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-lock-')); });
test.after.each(async (ctx) => { await fs.rm(ctx.dir, { recursive: true, force: true }); });

const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
const writeLock = (dir: string, owner: object) => fs.writeFile(path.join(dir, LOCK_FILE), JSON.stringify(owner));

test('a live lock refuses a second owner; release frees it', (ctx) => withTimeout((async () => {
  const lock = await lockDataDir(ctx.dir);
  try {
    await lockDataDir(ctx.dir);
    assert.unreachable('locked twice');
  } catch (err) {
    assert.match((err as Error).message, /EDGEFED_ERR_DATA_DIR_LOCKED/);
  }
  await lock.release();
  const again = await lockDataDir(ctx.dir);
  await again.release();
})(), 5000, 'live lock'));

test('a fresh lock of another host is respected; one left untouched is taken over', (ctx) => withTimeout((async () => {
  await writeLock(ctx.dir, { pid: 1, hostname: 'another-host', proc_start: null, acquired_at: 1 });
  try {
    await lockDataDir(ctx.dir, 60_000);
    assert.unreachable('took a fresh foreign lock');
  } catch (err) {
    assert.match((err as Error).message, /another-host/);
  }
  const old = new Date(Date.now() - 120_000);
  await fs.utimes(path.join(ctx.dir, LOCK_FILE), old, old);
  const lock = await lockDataDir(ctx.dir, 60_000);
  assert.is(JSON.parse(await fs.readFile(lock.path, 'utf8')).pid, process.pid);
  await lock.release();
})(), 5000, 'foreign lock'));

test('an unreadable lock is not taken while fresh', (ctx) => withTimeout((async () => {
  await fs.writeFile(path.join(ctx.dir, LOCK_FILE), '');
  try {
    await lockDataDir(ctx.dir, 60_000);
    assert.unreachable('took a fresh unreadable lock');
  } catch (err) {
    assert.match((err as Error).message, /EDGEFED_ERR_DATA_DIR_LOCKED/);
  }
})(), 5000, 'unreadable lock'));

test('hubs racing for a dead owner\'s lock: exactly one wins', (ctx) => withTimeout((async () => {
  // 40 rounds: the race that once gave two owners showed in about 1 round in 60 (lock.ts evict()).
  const dead = deadPid();
  for (let round = 0; round < 40; round += 1) {
    await writeLock(ctx.dir, { pid: dead, hostname: os.hostname(), proc_start: '1', acquired_at: 1 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => lockDataDir(ctx.dir)));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.is(won.length, 1, `round ${round}: one owner`);
    const leftovers = (await fs.readdir(ctx.dir)).filter((f) => f !== LOCK_FILE);
    assert.equal(leftovers, [], 'no temp files left behind');
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof lockDataDir>>>).value.release();
  }
})(), 10_000, 'race'));

test.run();
