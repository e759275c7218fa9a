/**
 * One live hub per data dir. lowdb has no cross-process lock, and two hubs
 * writing one registry would lose each other's changes. The lock file names
 * its owner (pid, host, process start time) and is created atomically with
 * its content (link of a complete temp file), so nobody ever reads a half-
 * written lock. A hub restarted after kill -9 sees the owner is gone and takes
 * the lock over at once; the start time guards against a recycled pid. An
 * owner on another host (a shared volume, a recreated container) cannot be
 * probed, so the owner touches the file every few seconds and a lock left
 * untouched for `staleMs` is taken over.
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { EdgefedError } from '../lib/errors.js';

export interface LockOwner { pid: number; hostname: string; proc_start: string | null; acquired_at: number }
export interface DataDirLock { readonly path: string; release(): Promise<void> }

export const LOCK_FILE = 'hub.lock';
const REFRESH_MS = 5_000;
const STALE_MS = 30_000;

/** Fields of /proc/<pid>/stat after the command name (Linux); null where there is none. */
function procFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Process start time (field 22), to tell a live owner from a recycled pid. */
const procStart = (pid: number): string | null => procFields(pid)?.[19] ?? null;
/** Process state letter (field 3): R, S, Z... */
const procState = (pid: number): string | null => procFields(pid)?.[0] ?? null;

function pidAlive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (procState(owner.pid) === 'Z') return false; // killed, not yet reaped by its parent
  const start = procStart(owner.pid);
  return owner.proc_start === null || start === null || start === owner.proc_start;
}

/** Alive unless proven dead: a dead local pid, or a lock nobody has touched for `staleMs`. */
function isAlive(owner: LockOwner | null, ageMs: number, staleMs: number): boolean {
  if (owner && owner.hostname === os.hostname()) return pidAlive(owner);
  return ageMs < staleMs;
}

async function readLock(file: string): Promise<{ owner: LockOwner | null; ageMs: number; raw: string } | null> {
  try {
    const [raw, st] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
    let owner: LockOwner | null = null;
    try {
      const parsed = JSON.parse(raw) as LockOwner;
      if (typeof parsed.pid === 'number') owner = parsed;
    } catch { /* not ours or damaged: judged by age alone */ }
    return { owner, ageMs: Date.now() - st.mtimeMs, raw };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Creates `file` with `content` only if it does not exist, never exposing a partial file. */
async function createExclusive(file: string, content: string): Promise<boolean> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(temp, content, { mode: 0o644 });
  try {
    await fs.link(temp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(temp, { force: true });
  }
}

/** A claim to evict left by a hub that died mid-eviction is ignored after this long. */
const EVICT_STALE_MS = 10_000;

/**
 * Removes a dead owner's lock, one contender at a time: whoever creates
 * `hub.lock.evict` re-reads the lock and removes it only if it is still the
 * one judged dead (nobody else can replace it meanwhile: a dead owner does
 * not release, and every other eviction waits for the claim). The others
 * wait a moment and try again; once the lock is gone they race on its atomic
 * creation, which exactly one wins. Moving the lock aside and back, as this
 * did before, left a window in which a second contender could create a lock
 * while the first was putting a live one back: two owners.
 */
async function evict(file: string, judged: string): Promise<void> {
  const claim = `${file}.evict`;
  if (!(await createExclusive(claim, String(process.pid)))) {
    await clearStaleClaim(claim);
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 10));
    return;
  }
  try {
    const current = await fs.readFile(file, 'utf8').catch(() => null);
    if (current === judged) await fs.rm(file, { force: true });
  } finally {
    await fs.rm(claim, { force: true });
  }
}

async function clearStaleClaim(claim: string): Promise<void> {
  const st = await fs.stat(claim).catch(() => null);
  if (st && Date.now() - st.mtimeMs > EVICT_STALE_MS) await fs.rm(claim, { force: true });
}

export async function lockDataDir(dataDir: string, staleMs = STALE_MS): Promise<DataDirLock> {
  await fs.mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, hostname: os.hostname(), proc_start: procStart(process.pid), acquired_at: Date.now() };
  const content = JSON.stringify(me);
  for (let tries = 0; tries < 20; tries += 1) {
    if (await createExclusive(file, content)) return holdLock(file, content);
    const current = await readLock(file);
    if (current === null) continue; // released meanwhile
    if (isAlive(current.owner, current.ageMs, staleMs)) {
      const who = current.owner ? `pid ${current.owner.pid} on ${current.owner.hostname}` : 'an unknown owner';
      throw new EdgefedError('EDGEFED_ERR_DATA_DIR_LOCKED',
        `${dataDir} is used by another hub (${who}). ` +
          `Stop that hub, or give this one another --data-dir. A lock of a dead hub on another host is taken over after ${Math.round(staleMs / 1000)} s.`,
      );
    }
    await evict(file, current.raw);
  }
  throw new EdgefedError('EDGEFED_ERR_DATA_DIR_LOCKED', `could not take ${file}; other hubs are starting at the same time.`);
}

/** Keeps the lock fresh (its mtime) while held, so other hosts can tell it is alive. */
function holdLock(file: string, content: string): DataDirLock {
  const refresh = setInterval(() => {
    const now = new Date();
    fs.utimes(file, now, now).catch(() => undefined);
  }, REFRESH_MS);
  refresh.unref();
  return {
    path: file,
    async release() {
      clearInterval(refresh);
      const current = await readLock(file).catch(() => null);
      if (current?.raw === content) await fs.rm(file, { force: true });
    },
  };
}
