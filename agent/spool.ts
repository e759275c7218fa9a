/**
 * The offline spool: execution updates produced while the agent cannot reach
 * the broker, kept in order until the next connect replays them. A bounded
 * FIFO in memory, optionally mirrored to a `SpoolStore` (spool-file.ts) so it
 * survives a restart. The queue logic lives here once; a store only persists
 * (lowdb's Adapter idea), and test/agent-spool.test.ts runs the same contract
 * against the in-memory and the file-backed spool.
 */
import { isValidId } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import type { ExecutionState, ExecutionUpdate } from '../lib/wire.js';

export const DEFAULT_SPOOL_MAX = 10_000;

/** One spooled update; `seq` grows by one per append, so removal never depends on array positions. */
export interface SpoolEntry {
  readonly seq: number;
  readonly update: ExecutionUpdate;
}

/** What a store found on disk: updates in order, and what it had to skip. */
export interface LoadedSpool {
  updates: ExecutionUpdate[];
  /** A last line without its newline: the previous process died mid-write. */
  torn: boolean;
  /** Complete lines that were not an execution update (corruption, a foreign file). */
  unreadable: number;
}

/** Durable storage for a Spool. Every method is synchronous: appends happen only while offline, and are small. */
export interface SpoolStore {
  /** Where the spool lives, for logs. */
  readonly location: string;
  load(): LoadedSpool;
  append(update: ExecutionUpdate): void;
  /** Replaces the whole content with `updates` (atomically where the medium allows). */
  rewrite(updates: readonly ExecutionUpdate[]): void;
  clear(): void;
}

export interface SpoolOptions {
  /** Only this node's updates are replayed; a store shared by mistake must not publish for another node. */
  nodeId: string;
  /** Entries kept at most; beyond it the oldest are dropped. */
  max: number;
  log: Logger;
  /** Durable mirror; without it the spool lives and dies with the process. */
  store?: SpoolStore;
}

export class Spool {
  private readonly entries: SpoolEntry[] = [];
  private nextSeq = 1;
  /** Lines in the store: more than `entries` once replayed entries were removed without a rewrite. */
  private storedLines = 0;
  /** Drops in the current overflow episode (from the first drop until the spool is empty again). */
  private dropped = 0;
  private storeFailing = false;

  constructor(private readonly opts: SpoolOptions) {}

  get size(): number {
    return this.entries.length;
  }

  get durable(): boolean {
    return this.opts.store !== undefined;
  }

  /** Loads what a previous process left behind. Never throws: an unreadable store is logged and starts empty. */
  open(): void {
    const store = this.opts.store;
    if (!store) return;
    let loaded: LoadedSpool;
    try {
      loaded = store.load();
    } catch (err) {
      this.storeError('reading', err);
      return;
    }
    const own = loaded.updates.filter((u) => u.node_id === this.opts.nodeId);
    const foreign = loaded.updates.length - own.length;
    const kept = own.slice(-this.opts.max);
    for (const update of kept) this.entries.push({ seq: this.nextSeq++, update });
    this.storedLines = loaded.updates.length + loaded.unreadable;
    const fields = { spool: store.location, updates: kept.length, torn_line: loaded.torn, unreadable: loaded.unreadable, foreign, over_limit: own.length - kept.length };
    if (loaded.unreadable > 0 || foreign > 0) this.opts.log.warn(fields, 'skipped spooled lines that are not this node\'s execution updates');
    else if (kept.length > 0 || loaded.torn) this.opts.log.info(fields, 'found spooled execution updates from a previous run');
    // A torn tail would glue itself to the next appended line: start from a clean file.
    if (loaded.torn || this.storedLines !== kept.length) this.rewriteStore();
  }

  append(update: ExecutionUpdate): void {
    this.entries.push({ seq: this.nextSeq++, update });
    if (this.entries.length > this.opts.max) this.dropOldest();
    const store = this.opts.store;
    if (!store) return;
    // The file may hold up to twice the bound before it is compacted: O(1) appends on average, bounded on disk.
    if (this.storedLines >= 2 * this.opts.max) {
      this.rewriteStore();
      return;
    }
    try {
      store.append(update);
      this.storedLines += 1;
      this.storeFailing = false;
    } catch (err) {
      this.storeError('writing', err);
    }
  }

  /** The oldest `max` entries, without removing them (a replay removes them once the broker acknowledged them). */
  peek(max: number): readonly SpoolEntry[] {
    return this.entries.slice(0, max);
  }

  /** Removes every entry up to and including `last` (entries dropped meanwhile are simply gone already). */
  removeThrough(last: SpoolEntry): void {
    let n = 0;
    while (n < this.entries.length && this.entries[n]!.seq <= last.seq) n += 1;
    this.entries.splice(0, n);
    if (this.entries.length > 0) return;
    this.endOverflowEpisode();
    if (this.storedLines > 0) this.clearStore();
  }

  /** Makes the store hold exactly the pending entries (after a replay stopped halfway, at shutdown). */
  checkpoint(): void {
    if (!this.opts.store || this.storedLines === this.entries.length) return;
    if (this.entries.length === 0) this.clearStore();
    else this.rewriteStore();
  }

  private dropOldest(): void {
    this.entries.shift();
    this.dropped += 1;
    if (this.dropped === 1) {
      // Once per episode: an agent offline for a day must not log one line per lost update.
      this.opts.log.warn({ max: this.opts.max }, 'offline spool full: dropping the oldest execution updates until the broker is reachable');
    }
  }

  private endOverflowEpisode(): void {
    if (this.dropped === 0) return;
    this.opts.log.warn({ dropped: this.dropped, max: this.opts.max }, 'offline spool drained; execution updates were dropped while it was full');
    this.dropped = 0;
  }

  private rewriteStore(): void {
    try {
      this.opts.store?.rewrite(this.entries.map((e) => e.update));
      this.storedLines = this.entries.length;
      this.storeFailing = false;
    } catch (err) {
      this.storeError('rewriting', err);
    }
  }

  private clearStore(): void {
    try {
      this.opts.store?.clear();
      this.storedLines = 0;
    } catch (err) {
      this.storeError('removing', err);
    }
  }

  /** The in-memory queue stays the source of truth: a failing disk costs durability, never the updates of this run. */
  private storeError(doing: string, err: unknown): void {
    if (this.storeFailing) return;
    this.storeFailing = true;
    const message = err instanceof Error ? err.message : String(err);
    this.opts.log.error({ spool: this.opts.store?.location, err: message }, `${doing} the offline spool failed; updates are kept in memory only`);
  }
}

const STATES = new Set<ExecutionState>(['accepted', 'running', 'succeeded', 'failed', 'rejected', 'timed_out']);

/** A light shape check for lines read back from a store (they were written by an agent, but disks and people corrupt files). */
export function isExecutionUpdate(value: unknown): value is ExecutionUpdate {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const u = value as Record<string, unknown>;
  return isValidId(u.wpk_id) && isValidId(u.node_id) && Number.isInteger(u.attempt) && STATES.has(u.state as ExecutionState)
    && Number.isSafeInteger(u.ts);
}
