/**
 * The Store seam: how the hub persists its state, as changes rather than
 * snapshots. The hub keeps its state in memory and hands the store batches of
 * what changed (flushed per few ms for durable changes, per few seconds for
 * liveness). The embedded default writes lowdb files (store/lowdb.ts); a
 * transactional store (PostgreSQL) writes each batch as one transaction.
 *
 * Records in a change set are the hub's live objects: a store serialises what
 * it needs before its first `await`, and never keeps or mutates them.
 */
import type { NodeRecord } from '../registry.js';
import type { WpkRecord } from '../wpk/types.js';

/** Liveness alone: written lazily, in batches (a fleet's heartbeats must not become a write each). */
export interface NodeLiveness {
  node_id: string;
  last_seen: number | null;
  load: number | null;
  running_wpks: number | null;
}

export interface NodeChanges {
  /** Nodes created or changed, whole, as they are now. */
  upserted: NodeRecord[];
  /** Node ids gone from the registry. */
  removed: string[];
  /** Nodes whose liveness alone moved (never also in `upserted`). */
  liveness: NodeLiveness[];
}

export interface WpkChanges {
  /** Work packages created or changed, with their executions, as they are now. */
  upserted: WpkRecord[];
  /** Work packages forgotten (past their retention). */
  removed: string[];
}

export interface StoredState {
  nodes: NodeRecord[];
  /** Oldest first. */
  wpks: WpkRecord[];
}

/** What a store is, for /health and logs: never a password. */
export interface StoreDescription {
  kind: 'files' | 'postgres' | 'custom';
  /** A directory, or a URL without its password. */
  location: string;
}

export interface Store {
  /** What the store is; a store without it is reported as `custom`. */
  readonly describe?: StoreDescription;
  /** A cheap round trip to the storage, run every few seconds; stores without one are taken as up until a write fails. */
  check?(): Promise<void>;
  /** Reads everything the hub needs at start. A store it cannot read stops the hub with what to do. */
  load(): Promise<StoredState>;
  /** Writes one batch of node changes, all or nothing where the store can. Never called twice at once. */
  writeNodes(changes: NodeChanges): Promise<void>;
  /** Likewise for work packages (their own batches: a burst of work must not delay registry writes). */
  writeWpks(changes: WpkChanges): Promise<void>;
  /** Releases what the store holds (connections); pending batches were written by then. */
  close(): Promise<void>;
}
