/**
 * Persistence of the registry: a snapshot of every record in one JSON
 * document through a lowdb Adapter. The default is a DurableDataFile
 * (lib/durable-file.ts): a temp file, fsync, rename, fsync of the directory,
 * so a crash or a power cut mid-write leaves the previous or the new complete
 * file. Never JSONFilePreset: it silently goes in-memory when NODE_ENV=test.
 * Tests inject lowdb's Memory adapter instead.
 */
import path from 'node:path';
import { Low, Memory, type Adapter } from 'lowdb';
import { DurableDataFile } from '../../lib/durable-file.js';
import type { NodeRecord } from '../registry.js';
import { EdgefedError } from '../../lib/errors.js';

export const REGISTRY_FORMAT = 1;

export interface RegistryFile {
  format: number;
  saved_at: number;
  nodes: Record<string, NodeRecord>;
}

export function emptyRegistryFile(): RegistryFile {
  return { format: REGISTRY_FORMAT, saved_at: 0, nodes: {} };
}

export function registryPath(dataDir: string): string {
  return path.join(dataDir, 'registry.json');
}

/**
 * lowdb's JSONFile pretty-prints (indent 2); compact JSON is ~40% smaller and
 * faster to write, and `jq . registry.json` reads it fine. Written through
 * `.<name>.tmp` and fsynced: one fsync of the file and one of the directory
 * per write, and the Flusher makes that one write per flush, not per change.
 */
export function compactJsonFile<T>(file: string, stringify: (data: T) => string = (data) => JSON.stringify(data)): Adapter<T> {
  return new DurableDataFile<T>(file, { parse: (text) => JSON.parse(text) as T, stringify });
}

export function fileAdapter(dataDir: string): Adapter<RegistryFile> {
  return compactJsonFile<RegistryFile>(registryPath(dataDir));
}

export function memoryAdapter(): Adapter<RegistryFile> {
  return new Memory<RegistryFile>();
}

export class RegistryStore {
  readonly #db: Low<RegistryFile>;

  constructor(adapter: Adapter<RegistryFile>, private readonly where = 'registry') {
    this.#db = new Low(adapter, emptyRegistryFile());
  }

  /** Reads the snapshot; a file that is not a registry stops the hub rather than being overwritten. */
  async load(): Promise<NodeRecord[]> {
    const data = await readDocument(this.#db, this.where, 'nodes', REGISTRY_FORMAT);
    return Object.values(data.nodes);
  }

  async save(records: Iterable<NodeRecord>, now: number): Promise<void> {
    const nodes: Record<string, NodeRecord> = {};
    for (const r of records) nodes[r.node_id] = r;
    this.#db.data = { format: REGISTRY_FORMAT, saved_at: now, nodes };
    await this.#db.write();
  }
}

/**
 * Reads a lowdb document and checks it is ours (a `collection` object, a
 * format this version reads). Anything else stops the hub with what to do,
 * rather than being overwritten by an empty document.
 */
export async function readDocument<T extends { format: number }>(db: Low<T>, where: string, collection: keyof T & string, maxFormat: number): Promise<T> {
  try {
    await db.read();
  } catch (err) {
    throw new EdgefedError('EDGEFED_ERR_REGISTRY_UNREADABLE',
      `${where} is not valid JSON (${(err as Error).message}). ` +
        'Restore it from a backup or move it aside to start empty.',
    );
  }
  const data = db.data as unknown;
  const held = typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[collection] : undefined;
  if (typeof held !== 'object' || held === null) {
    throw new EdgefedError('EDGEFED_ERR_REGISTRY_UNREADABLE', `${where} does not hold an edgefed ${collection} document (no "${collection}" object).`);
  }
  const doc = data as T;
  if (doc.format > maxFormat) {
    throw new EdgefedError('EDGEFED_ERR_REGISTRY_FORMAT', `${where} has format ${doc.format}; this hub reads up to ${maxFormat}. Upgrade edgefed.`);
  }
  return doc;
}
