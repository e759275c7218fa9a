/**
 * lowdb adapters whose writes survive a power cut, not only a crash.
 *
 * lowdb's own TextFile/DataFile write through steno: a temp file, then a
 * rename over the target. A crashed process leaves the old or the new file,
 * but steno never fsyncs, so after a power cut the rename can be on disk
 * while the data is not: an empty or truncated file (ext4, SD cards). Here a
 * write is: the temp file beside the target (`.name.tmp`, steno's name),
 * fsync, rename, fsync of the directory. A power cut leaves either the old or
 * the new complete file.
 *
 * Kept from steno: writes to one file are serialised and coalesced. A write
 * asked for while one runs waits; of several such, only the latest data is
 * written and they all settle with that write.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import { EdgefedError } from './errors.js';

/** An open file, as far as the writer uses it (node's FileHandle fits). */
export interface DurableHandle {
  writeFile(data: string, encoding: 'utf8'): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The file operations the adapters use: node:fs/promises unless a test passes a spy. */
export interface DurableFs {
  /** 'wx' with a mode: created exclusively, so the mode applies (a private key's 0600). */
  open(file: string, flags: 'w' | 'wx' | 'r', mode?: number): Promise<DurableHandle>;
  rename(from: string, to: string): Promise<void>;
  readFile(file: string, encoding: 'utf8'): Promise<string>;
  unlink(file: string): Promise<void>;
}

export const nodeFs: DurableFs = { open, rename, readFile, unlink };

export interface DurableFileOptions {
  /** File operations; node:fs/promises by default. */
  fs?: DurableFs;
  /**
   * Extra attempts at the rename, 100 ms apart. Windows refuses to replace a
   * file another process holds open (EPERM, EACCES, EBUSY; an indexer, an
   * antivirus), as steno's retries assume. Default: 9 on Windows, else 0.
   */
  renameRetries?: number;
}

const RENAME_RETRY_MS = 100;
const RENAME_BUSY = new Set(['EPERM', 'EACCES', 'EBUSY']);
/** What a platform or file system that cannot sync a directory answers (Windows, some network mounts). */
const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL']);

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** steno's temp name: `/dir/.file.tmp` for `/dir/file`. */
export function tempFileOf(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
}

/**
 * Makes the directory's entries (a rename, a new file) durable. Where a
 * directory cannot be opened or synced (EISDIR, EPERM, EINVAL), that is
 * ignored: the platform gives no such guarantee to ask for.
 */
export async function syncDirectory(dir: string, fs: DurableFs = nodeFs): Promise<void> {
  let handle: DurableHandle;
  try {
    handle = await fs.open(dir, 'r');
  } catch (err) {
    if (DIR_SYNC_UNSUPPORTED.has(errnoOf(err) ?? '')) return;
    throw err;
  }
  try {
    await handle.sync();
  } catch (err) {
    if (!DIR_SYNC_UNSUPPORTED.has(errnoOf(err) ?? '')) throw err;
  } finally {
    await handle.close();
  }
}

/**
 * A failed write: names the target and the step, keeps the `errno` and
 * the cause. `replaced` tells whether the new file was already renamed into
 * place (only its directory's fsync failed) or the previous file is untouched.
 */
export class DurableWriteError extends EdgefedError {
  override readonly name = 'DurableWriteError';
  /** The errno of the step that failed (ENOSPC, EROFS...). */
  readonly errno: string | undefined;

  constructor(readonly file: string, readonly step: string, cause: unknown, readonly replaced = false) {
    const why = cause instanceof Error ? cause.message : String(cause);
    const state = replaced ? 'the new file is in place but may not survive a power cut' : 'the previous file is unchanged';
    super('EDGEFED_ERR_FILE_WRITE', `could not write ${file} (${step}: ${why}); ${state}. Check that its directory exists, is writable and has space.`, { cause });
    this.errno = errnoOf(cause);
  }
}

interface Queued {
  text: string;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A text file as a lowdb Adapter<string>, written durably. */
export class DurableTextFile implements Adapter<string> {
  readonly file: string;
  readonly tempFile: string;
  readonly #fs: DurableFs;
  readonly #renameRetries: number;
  #busy = false;
  #next: Queued | undefined;

  constructor(file: string, opts: DurableFileOptions = {}) {
    this.file = file;
    this.tempFile = tempFileOf(file);
    this.#fs = opts.fs ?? nodeFs;
    this.#renameRetries = opts.renameRetries ?? (process.platform === 'win32' ? 9 : 0);
  }

  /** The file's text, or null if there is no file yet. A leftover temp file is never read. */
  async read(): Promise<string | null> {
    try {
      return await this.#fs.readFile(this.file, 'utf8');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return null;
      throw err;
    }
  }

  /** Resolves once `text` (or newer text asked for meanwhile) is durably in place. */
  write(text: string): Promise<void> {
    if (!this.#busy) return this.#run(text);
    if (this.#next) {
      this.#next.text = text;
      return this.#next.done;
    }
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    this.#next = { text, done, resolve, reject };
    return done;
  }

  async #run(text: string): Promise<void> {
    this.#busy = true;
    try {
      await writeFileDurably(this.file, text, { fs: this.#fs, renameRetries: this.#renameRetries });
    } finally {
      const next = this.#next;
      this.#next = undefined;
      if (next) this.#run(next.text).then(next.resolve, next.reject);
      else this.#busy = false;
    }
  }

}

export interface WriteDurablyOptions {
  fs?: DurableFs;
  /** Default `.name.tmp` beside the file (steno's name). */
  tempFile?: string;
  /**
   * Mode of a new file (e.g. 0o600 for a private key). The temp file is then
   * removed first and created exclusively, so the mode holds from its first byte.
   */
  mode?: number;
  renameRetries?: number;
}

/**
 * One durable write of `text` to `file`: the temp file, fsync, rename, fsync
 * of the directory. A failure is a DurableWriteError naming the step; the
 * temp file is removed and the previous file is left as it was.
 */
export async function writeFileDurably(file: string, text: string, opts: WriteDurablyOptions = {}): Promise<void> {
  const fs = opts.fs ?? nodeFs;
  const tempFile = opts.tempFile ?? tempFileOf(file);
  const handle = await createTemp(fs, tempFile, opts.mode).catch((err: unknown) => { throw new DurableWriteError(file, `create ${tempFile}`, err); });
  let step = `write ${tempFile}`;
  try {
    try {
      await handle.writeFile(text, 'utf8');
      step = `fsync ${tempFile}`;
      await handle.sync();
    } finally {
      await handle.close();
    }
    step = `rename ${tempFile}`;
    await renameRetrying(fs, tempFile, file, opts.renameRetries ?? 0);
  } catch (err) {
    // A half-written temp file is of no use to anyone, and may fill a full disk further.
    await fs.unlink(tempFile).catch(() => undefined);
    throw new DurableWriteError(file, step, err);
  }
  // The new name is in place; without this a power cut may still bring back the old file.
  await syncDirectory(path.dirname(file), fs).catch((err: unknown) => {
    throw new DurableWriteError(file, `fsync ${path.dirname(file)}`, err, true);
  });
}

async function createTemp(fs: DurableFs, tempFile: string, mode: number | undefined): Promise<DurableHandle> {
  // 'w' truncates: a temp file left by a crash mid-write is simply overwritten.
  if (mode === undefined) return fs.open(tempFile, 'w');
  await fs.unlink(tempFile).catch((err: unknown) => { if (errnoOf(err) !== 'ENOENT') throw err; });
  return fs.open(tempFile, 'wx', mode);
}

async function renameRetrying(fs: DurableFs, from: string, to: string, retries: number): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await fs.rename(from, to);
      return;
    } catch (err) {
      if (attempt >= retries || !RENAME_BUSY.has(errnoOf(err) ?? '')) throw err;
      await new Promise((r) => setTimeout(r, RENAME_RETRY_MS));
    }
  }
}

export interface DataFileOptions<T> extends DurableFileOptions {
  parse: (text: string) => T;
  stringify: (data: T) => string;
}

/** lowdb's DataFile over a DurableTextFile: a document as a lowdb Adapter<T>, written durably. */
export class DurableDataFile<T> implements Adapter<T> {
  readonly #text: DurableTextFile;
  readonly #parse: (text: string) => T;
  readonly #stringify: (data: T) => string;

  constructor(file: string, opts: DataFileOptions<T>) {
    this.#text = new DurableTextFile(file, opts);
    this.#parse = opts.parse;
    this.#stringify = opts.stringify;
  }

  async read(): Promise<T | null> {
    const text = await this.#text.read();
    return text === null ? null : this.#parse(text);
  }

  /** Stringifies now (as lowdb's DataFile does): later changes to `data` are not part of this write. */
  write(data: T): Promise<void> {
    return this.#text.write(this.#stringify(data));
  }
}
