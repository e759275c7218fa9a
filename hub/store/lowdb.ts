/**
 * The embedded default Store: `<dataDir>/registry.json` and `<dataDir>/wpks.json`
 * through lowdb adapters (durable writes: temp file, fsync, rename, fsync of
 * the directory). A file holds a snapshot, so each batch is applied to the
 * records kept here and the file is written whole: one write per flush, not
 * per change (the flushers coalesce). Tests pass lowdb's Memory adapters.
 */
import type { Adapter } from 'lowdb';
import type { NodeRecord } from '../registry.js';
import { WpkStore, wpkFileAdapter, wpkMemoryAdapter, wpkPath, type WpkFile } from '../wpk/store.js';
import type { WpkRecord } from '../wpk/types.js';
import { fileAdapter, memoryAdapter, registryPath, RegistryStore, type RegistryFile } from './registry-file.js';
import type { NodeChanges, Store, StoreDescription, StoredState, WpkChanges } from './types.js';

export interface LowdbStoreOptions {
  /** The registry document; default `<dataDir>/registry.json`. */
  registry?: Adapter<RegistryFile>;
  /** The work-package document; default `<dataDir>/wpks.json`, in memory without a dataDir. */
  wpks?: Adapter<WpkFile>;
  /** Where the files are. Without it, both default to memory. */
  dataDir?: string;
}

export class LowdbStore implements Store {
  readonly describe: StoreDescription;
  readonly #registry: RegistryStore;
  readonly #wpks: WpkStore;
  /** The records as last written, by id: a file is rewritten from these. */
  readonly #nodes = new Map<string, NodeRecord>();
  /** Insertion order is creation order: the file keeps WPKs oldest first. */
  readonly #wpkRecords = new Map<string, WpkRecord>();

  constructor(o: LowdbStoreOptions) {
    const dir = o.dataDir;
    this.describe = { kind: 'files', location: dir ?? 'memory' };
    this.#registry = new RegistryStore(o.registry ?? (dir ? fileAdapter(dir) : memoryAdapter()), dir ? registryPath(dir) : 'registry');
    this.#wpks = new WpkStore(o.wpks ?? (dir ? wpkFileAdapter(dir) : wpkMemoryAdapter()), dir ? wpkPath(dir) : 'wpks');
  }

  async load(): Promise<StoredState> {
    const nodes = await this.#registry.load();
    const wpks = await this.#wpks.load();
    this.#nodes.clear();
    for (const r of nodes) this.#nodes.set(r.node_id, r);
    this.#wpkRecords.clear();
    for (const w of wpks) this.#wpkRecords.set(w.wpk_id, w);
    return { nodes, wpks };
  }

  async writeNodes(changes: NodeChanges): Promise<void> {
    for (const id of changes.removed) this.#nodes.delete(id);
    for (const r of changes.upserted) this.#nodes.set(r.node_id, r);
    // Held records are the hub's own (upserted since load) and already say this; kept for a store fed by another hub.
    for (const l of changes.liveness) {
      const r = this.#nodes.get(l.node_id);
      if (r) this.#nodes.set(l.node_id, { ...r, last_seen: l.last_seen, load: l.load, running_wpks: l.running_wpks });
    }
    await this.#registry.save(this.#nodes.values(), Date.now());
  }

  async writeWpks(changes: WpkChanges): Promise<void> {
    for (const id of changes.removed) this.#wpkRecords.delete(id);
    for (const w of changes.upserted) this.#wpkRecords.set(w.wpk_id, w);
    await this.#wpks.save(this.#wpkRecords.values(), Date.now());
  }

  async close(): Promise<void> {
    // Files: nothing held open between writes.
  }
}
