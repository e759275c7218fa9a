/**
 * Persistence of the registry: a snapshot of every record in one JSON
 * document through a lowdb Adapter. The default is lowdb's DataFile (steno
 * writes a temp file and renames it, so a crash mid-write leaves the previous
 * complete file). Never JSONFilePreset: it silently goes in-memory when
 * NODE_ENV=test. Tests inject lowdb's Memory adapter instead.
 */
import path from 'node:path';
import { Low, Memory, type Adapter } from 'lowdb';
import { DataFile } from 'lowdb/node';
import type { NodeRecord } from './registry.js';

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
 * faster to write, and `jq . registry.json` reads it fine. DataFile keeps
 * JSONFile's atomic temp-file-and-rename writer.
 */
export function fileAdapter(dataDir: string): Adapter<RegistryFile> {
  return new DataFile<RegistryFile>(registryPath(dataDir), {
    parse: (text) => JSON.parse(text) as RegistryFile,
    stringify: (data) => JSON.stringify(data),
  });
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
    try {
      await this.#db.read();
    } catch (err) {
      throw new Error(
        `EDGEFED_ERR_REGISTRY_UNREADABLE: ${this.where} is not valid JSON (${(err as Error).message}). ` +
          'Restore it from a backup or move it aside to start with an empty registry.',
      );
    }
    const data = this.#db.data;
    if (typeof data !== 'object' || data === null || typeof data.nodes !== 'object' || data.nodes === null) {
      throw new Error(`EDGEFED_ERR_REGISTRY_UNREADABLE: ${this.where} does not hold an edgefed registry (no "nodes" object).`);
    }
    if (data.format > REGISTRY_FORMAT) {
      throw new Error(`EDGEFED_ERR_REGISTRY_FORMAT: ${this.where} has format ${data.format}; this hub reads up to ${REGISTRY_FORMAT}. Upgrade edgefed.`);
    }
    return Object.values(data.nodes);
  }

  async save(records: Iterable<NodeRecord>, now: number): Promise<void> {
    const nodes: Record<string, NodeRecord> = {};
    for (const r of records) nodes[r.node_id] = r;
    this.#db.data = { format: REGISTRY_FORMAT, saved_at: now, nodes };
    await this.#db.write();
  }
}
