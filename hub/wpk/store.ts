/**
 * Persistence of work packages: `<dataDir>/wpks.json`, one lowdb document
 * beside the registry but in its own file, so that a burst of work does not
 * make every registry flush heavier and the other way round. Writes are
 * atomic (temp file and rename), as for the registry.
 */
import path from 'node:path';
import { Low, Memory, type Adapter } from 'lowdb';
import { compactJsonFile, readDocument } from '../store/registry-file.js';
import type { WpkRecord } from './types.js';
import { EdgefedError } from '../../lib/errors.js';

export const WPK_FORMAT = 1;

export interface WpkFile {
  format: number;
  saved_at: number;
  /** Oldest first. */
  wpks: WpkRecord[];
}

export function wpkPath(dataDir: string): string {
  return path.join(dataDir, 'wpks.json');
}

/**
 * The JSON of finished WPKs, kept between writes: they rarely change again,
 * and stringifying every kept WPK on every write was half of the hub's busy
 * time at 200 WPK/s, and the tail of dispatch latency (bench/RESULTS.md).
 * A finished WPK that does change (a late result) is dropped with `changed()`.
 */
const finishedJson = new WeakMap<WpkRecord, string>();

export function changed(w: WpkRecord): void {
  finishedJson.delete(w);
}

function recordJson(w: WpkRecord): string {
  if (w.finished_at === null) return JSON.stringify(w);
  let json = finishedJson.get(w);
  if (json === undefined) {
    json = JSON.stringify(w);
    finishedJson.set(w, json);
  }
  return json;
}

/** The same text as JSON.stringify(data), built from the kept pieces. */
export function wpkFileText(data: WpkFile): string {
  return `{"format":${data.format},"saved_at":${data.saved_at},"wpks":[${data.wpks.map(recordJson).join(',')}]}`;
}

/** Compact JSON with atomic writes, as the registry (see hub/store.ts). */
export const wpkFileAdapter = (dataDir: string): Adapter<WpkFile> => compactJsonFile<WpkFile>(wpkPath(dataDir), wpkFileText);
export const wpkMemoryAdapter = (): Adapter<WpkFile> => new Memory<WpkFile>();

export class WpkStore {
  readonly #db: Low<WpkFile>;

  constructor(adapter: Adapter<WpkFile>, private readonly where = 'wpks') {
    this.#db = new Low(adapter, { format: WPK_FORMAT, saved_at: 0, wpks: [] });
  }

  async load(): Promise<WpkRecord[]> {
    const doc = await readDocument(this.#db, this.where, 'wpks', WPK_FORMAT);
    if (!Array.isArray(doc.wpks)) throw new EdgefedError('EDGEFED_ERR_REGISTRY_UNREADABLE', `${this.where}: "wpks" is not an array`);
    return doc.wpks;
  }

  async save(wpks: Iterable<WpkRecord>, now: number): Promise<void> {
    this.#db.data = { format: WPK_FORMAT, saved_at: now, wpks: [...wpks] };
    await this.#db.write();
  }
}
