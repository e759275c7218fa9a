/**
 * The spool on disk: one JSON line per execution update in
 * `<dir>/executions.jsonl`, appended in order. Appends are not fsync'd (flash
 * wear on devices, and a process crash loses nothing the kernel already has);
 * a power cut can tear the last line, which `load` recognises by its missing
 * newline and ignores. Rewrites go through a temporary file and a rename, so
 * a crash mid-compaction leaves either the old or the new file, never half.
 * The directory is created on the first write: an agent that never goes
 * offline never touches the disk.
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ExecutionUpdate } from '../lib/wire.js';
import { isExecutionUpdate, type LoadedSpool, type SpoolStore } from './spool.js';

export const SPOOL_FILE = 'executions.jsonl';

export class FileSpoolStore implements SpoolStore {
  readonly location: string;
  private dirReady = false;

  constructor(private readonly dir: string) {
    this.location = path.join(dir, SPOOL_FILE);
  }

  load(): LoadedSpool {
    let text: string;
    try {
      text = readFileSync(this.location, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { updates: [], torn: false, unreadable: 0 };
      throw err;
    }
    const lines = text.split('\n');
    // After the last newline: '' for a complete file, a fragment when the writer died mid-line.
    const tail = lines.pop() ?? '';
    const updates: ExecutionUpdate[] = [];
    let unreadable = 0;
    for (const line of lines) {
      if (line === '') continue;
      const update = parseLine(line);
      if (update) updates.push(update);
      else unreadable += 1;
    }
    return { updates, torn: tail !== '', unreadable };
  }

  append(update: ExecutionUpdate): void {
    this.ensureDir();
    appendFileSync(this.location, `${JSON.stringify(update)}\n`);
  }

  rewrite(updates: readonly ExecutionUpdate[]): void {
    this.ensureDir();
    const temp = `${this.location}.tmp`;
    writeFileSync(temp, updates.map((u) => `${JSON.stringify(u)}\n`).join(''));
    renameSync(temp, this.location);
  }

  clear(): void {
    rmSync(this.location, { force: true });
  }

  private ensureDir(): void {
    if (this.dirReady) return;
    mkdirSync(this.dir, { recursive: true });
    this.dirReady = true;
  }
}

function parseLine(line: string): ExecutionUpdate | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return isExecutionUpdate(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
