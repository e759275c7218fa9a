/**
 * One live hub per data dir. lowdb has no cross-process lock, and two hubs
 * writing one registry would lose each other's changes. The lock file names
 * its owner (pid, host, process start time); a hub restarted after kill -9
 * sees the owner is gone and takes the lock over at once. The start time
 * guards against a recycled pid.
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface LockOwner { pid: number; hostname: string; proc_start: string | null; acquired_at: number }
export interface DataDirLock { readonly path: string; release(): Promise<void> }

export const LOCK_FILE = 'hub.lock';

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

function isAlive(owner: LockOwner): boolean {
  if (owner.hostname !== os.hostname()) return true; // cannot tell: a shared disk, be safe
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (procState(owner.pid) === 'Z') return false; // killed, not yet reaped by its parent
  const start = procStart(owner.pid);
  return owner.proc_start === null || start === null || start === owner.proc_start;
}

async function readOwner(file: string): Promise<LockOwner | null> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as LockOwner;
    return typeof parsed.pid === 'number' ? parsed : null;
  } catch {
    return null; // empty or half-written by a hub killed while locking: nobody owns it
  }
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await fs.mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, hostname: os.hostname(), proc_start: procStart(process.pid), acquired_at: Date.now() };
  for (let tries = 0; tries < 3; tries += 1) {
    try {
      await fs.writeFile(file, JSON.stringify(me), { flag: 'wx', mode: 0o644 });
      return { path: file, release: () => releaseIfMine(file) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readOwner(file);
    if (owner && isAlive(owner)) {
      throw new Error(
        `EDGEFED_ERR_DATA_DIR_LOCKED: ${dataDir} is used by another hub (pid ${owner.pid} on ${owner.hostname}). ` +
          'Stop that hub, or give this one another --data-dir.',
      );
    }
    await fs.rm(file, { force: true }); // the owner is dead: take over
  }
  throw new Error(`EDGEFED_ERR_DATA_DIR_LOCKED: could not take ${file}; another hub is starting at the same time.`);
}

async function releaseIfMine(file: string): Promise<void> {
  const owner = await readOwner(file);
  if (owner?.pid === process.pid) await fs.rm(file, { force: true });
}
