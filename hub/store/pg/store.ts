/**
 * The PostgreSQL Store (`--store postgres://...`): the same seam as the lowdb
 * files (hub/store/types.ts), written as changes. Each batch is one
 * transaction: a node batch is an upsert of the changed records, a delete of
 * the removed ones and a three-column update for liveness; a work-package
 * batch upserts the WPK rows and only the executions that changed since this
 * store last wrote them (a 10,000-node mode-all WPK must not be rewritten per
 * update). The hub serves from memory; this store only has to keep up.
 */
import pg from 'pg';
import { EdgefedError } from '../../../lib/errors.js';
import { VERSION } from '../../../lib/version.js';
import type { NodeRecord } from '../../registry.js';
import type { ExecutionRecord, WpkRecord } from '../../wpk/types.js';
import type { NodeChanges, Store, StoredState, WpkChanges } from '../types.js';
import { describeUrl, poolConfig, storeError } from './connection.js';
import { acquireLease, FENCE, HUB_LEASE, readLease, releaseLease, renewLease, type Acquired, type LeaseHolder, type LeaseInfo } from './lease.js';
import { migrate } from './migrations.js';
import * as sql from './sql.js';

export interface PgStoreOptions {
  /** postgres://USER:PASSWORD@HOST:PORT/DATABASE */
  url: string;
  /** Pool size (default 4: one flusher each for nodes and WPKs, plus reads and checks). */
  maxConnections?: number;
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
  /** Told of a failure of an idle connection (the pool would otherwise crash the process). */
  onIdleError?: (err: EdgefedError) => void;
}

/** The hub lease, through this store's pool (lease.ts). */
export interface HubLease {
  acquire(holder: string, ttlMs: number, info: LeaseInfo): Promise<Acquired>;
  renew(holder: string, epoch: number, ttlMs: number, info: LeaseInfo): Promise<boolean>;
  release(holder: string, epoch: number): Promise<void>;
  read(): Promise<LeaseHolder | undefined>;
}

/**
 * What the store last wrote of an execution: it is written again only when
 * one of these moved. Kept per execution object (the hub's live records) as
 * plain fields: comparing them costs ~3 ms for a rollout's 100,000
 * executions per write, where string fingerprints in a Map keyed by node
 * cost ~150 ms, a stall of the hub at every write.
 */
interface Printed { u: number; s: string; p: number | null; f: number | null }

const printOf = (e: ExecutionRecord): Printed => ({ u: e.updated_at, s: e.state, p: e.progress, f: e.finished_at });
const unchanged = (a: Printed | undefined, e: ExecutionRecord): boolean => a !== undefined && a.u === e.updated_at && a.s === e.state && a.p === e.progress && a.f === e.finished_at;
const executionKey = (e: ExecutionRecord): string => `${e.node_id}\u0000${e.attempt}`;

/** A committed batch: the prints to keep, and each WPK's list of executions as written. */
interface Seen { prints: Array<[ExecutionRecord, Printed]>; lists: Map<string, ExecutionRecord[]> }

export class PgStore implements Store {
  readonly describe: { kind: 'postgres'; location: string };
  readonly #url: string;
  readonly #pool: pg.Pool;
  /** What the database holds of each execution the hub has (see Printed). */
  #printed = new WeakMap<ExecutionRecord, Printed>();
  /** Per WPK, its executions as last written: the hub only appends, so a shorter or reordered list is the rare case of a removal. */
  readonly #lists = new Map<string, ExecutionRecord[]>();
  #migrated: number[] = [];
  #closed = false;
  /** Set by fence(): every write first checks the lease still carries it. */
  #epoch: number | undefined;
  #onFenced: (() => void) | undefined;

  constructor(o: PgStoreOptions) {
    this.#url = o.url;
    this.describe = { kind: 'postgres', location: describeUrl(o.url) };
    this.#pool = new pg.Pool(poolConfig(o.url, { max: o.maxConnections, connectTimeoutMs: o.connectTimeoutMs, queryTimeoutMs: o.queryTimeoutMs }));
    this.#pool.on('error', (err) => o.onIdleError?.(storeError(err, this.#url, 'holding an idle connection')));
  }

  /** Migrations this store applied at load (empty when the schema was current). */
  get migrated(): readonly number[] { return this.#migrated; }

  /** Creates or migrates the tables (load does it too): a standby needs the lease table before it loads anything. */
  async prepare(): Promise<void> {
    await this.#withClient('creating or migrating the tables', async (c) => { this.#migrated = await migrate(c, VERSION); });
  }

  /**
   * From now on every write carries `epoch` and is refused (EDGEFED_ERR_FENCED,
   * and `onFenced` is told) once the lease has a newer one: a hub that lost
   * its lease, paused or cut off, cannot overwrite its successor's state.
   */
  fence(epoch: number, onFenced: () => void): void {
    this.#epoch = epoch;
    this.#onFenced = onFenced;
  }

  get lease(): HubLease {
    const pool = this.#pool;
    const url = this.#url;
    const guard = async <T>(doing: string, f: () => Promise<T>): Promise<T> => {
      try { return await f(); } catch (err) { throw storeError(err, url, doing); }
    };
    return {
      acquire: (holder, ttlMs, info) => guard('taking the hub lease', () => acquireLease(pool, holder, ttlMs, info)),
      renew: (holder, epoch, ttlMs, info) => guard('renewing the hub lease', () => renewLease(pool, holder, epoch, ttlMs, info)),
      release: (holder, epoch) => guard('releasing the hub lease', () => releaseLease(pool, holder, epoch)),
      read: () => guard('reading the hub lease', () => readLease(pool)),
    };
  }

  async load(): Promise<StoredState> {
    return this.#withClient('loading the hub state', async (c) => {
      this.#migrated = await migrate(c, VERSION);
      const nodes = (await c.query<{ record: NodeRecord; last_seen: number | null; load: number | null; running_wpks: number | null }>(sql.SELECT_NODES)).rows
        .map((row) => ({ ...row.record, last_seen: row.last_seen, load: row.load, running_wpks: row.running_wpks }));
      const wpks = (await c.query<{ record: WpkRecord }>(sql.SELECT_WPKS)).rows.map((row) => ({ ...row.record, executions: [] as ExecutionRecord[] }));
      const byId = new Map(wpks.map((w) => [w.wpk_id, w]));
      this.#printed = new WeakMap();
      this.#lists.clear();
      for (const row of (await c.query<{ wpk_id: string; record: ExecutionRecord }>(sql.SELECT_EXECUTIONS)).rows) {
        const w = byId.get(row.wpk_id);
        if (!w) continue;
        w.executions.push(row.record);
        this.#printed.set(row.record, printOf(row.record));
      }
      for (const w of wpks) this.#lists.set(w.wpk_id, w.executions.slice());
      return { nodes, wpks };
    });
  }

  async writeNodes(changes: NodeChanges): Promise<void> {
    // Serialised now: the records are the hub's live objects (types.ts).
    const upserted = changes.upserted.length > 0 ? JSON.stringify(changes.upserted) : undefined;
    const liveness = changes.liveness.length > 0 ? JSON.stringify(changes.liveness) : undefined;
    const removed = changes.removed;
    // Nothing to write still asks the database: a "written" must never be claimed while it is away.
    if (!upserted && !liveness && removed.length === 0) return this.check();
    await this.#transaction('writing node changes', async (c) => {
      if (removed.length > 0) await c.query(sql.DELETE_NODES, [removed]);
      if (upserted) await c.query(sql.UPSERT_NODES, [upserted]);
      if (liveness) await c.query(sql.UPDATE_LIVENESS, [liveness]);
    });
  }

  async writeWpks(changes: WpkChanges): Promise<void> {
    const { rows, executions, gone, seen } = this.#wpkBatch(changes.upserted);
    const removed = changes.removed;
    if (!rows && removed.length === 0) return this.check();
    await this.#transaction('writing work-package changes', async (c) => {
      if (removed.length > 0) await c.query(sql.DELETE_WPKS, [removed]);
      if (rows) await c.query(sql.UPSERT_WPKS, [rows]);
      if (executions) await c.query(sql.UPSERT_EXECUTIONS, [executions]);
      if (gone) await c.query(sql.DELETE_EXECUTIONS, [gone]);
    });
    // Only a committed batch counts as written: a failed one is sent whole again.
    for (const id of removed) this.#lists.delete(id);
    for (const [e, print] of seen.prints) this.#printed.set(e, print);
    for (const [wpkId, list] of seen.lists) this.#lists.set(wpkId, list);
  }

  /** A cheap round trip: whether the database answers now. */
  async check(): Promise<void> {
    await this.#withClient('checking the connection', (c) => c.query('SELECT 1'));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  /**
   * The rows of a WPK batch, and of its executions only those that moved
   * since the last commit, as JSON parameters (serialised before any await).
   */
  #wpkBatch(upserted: WpkRecord[]): { rows?: string; executions?: string; gone?: string; seen: Seen } {
    const rows: Array<Omit<WpkRecord, 'executions'>> = [];
    const executions: Array<{ wpk_id: string; position: number; r: ExecutionRecord }> = [];
    const gone: Array<{ wpk_id: string; node_id: string; attempt: number }> = [];
    const seen: Seen = { prints: [], lists: new Map() };
    for (const w of upserted) {
      const { executions: list, ...row } = w;
      rows.push(row);
      for (let position = 0; position < list.length; position++) {
        const e = list[position]!;
        if (unchanged(this.#printed.get(e), e)) continue;
        executions.push({ wpk_id: w.wpk_id, position, r: e });
        seen.prints.push([e, printOf(e)]);
      }
      const before = this.#lists.get(w.wpk_id);
      if (before && !extends_(list, before)) gone.push(...removedFrom(w.wpk_id, before, list));
      seen.lists.set(w.wpk_id, list.slice());
    }
    const json = (list: unknown[]): string | undefined => (list.length > 0 ? JSON.stringify(list) : undefined);
    return { rows: json(rows), executions: json(executions), gone: json(gone), seen };
  }

  async #transaction(doing: string, work: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    await this.#withClient(doing, async (c) => {
      await c.query('BEGIN');
      try {
        if (this.#epoch !== undefined) await this.#checkFence(c);
        await work(c);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async #checkFence(c: pg.PoolClient): Promise<void> {
    const { rows } = await c.query<{ epoch: string }>(FENCE, [HUB_LEASE]);
    const current = rows[0] ? Number(rows[0].epoch) : undefined;
    if (current === this.#epoch) return;
    this.#onFenced?.();
    throw new EdgefedError('EDGEFED_ERR_FENCED', `this hub's lease (epoch ${this.#epoch}) was taken over (epoch ${current ?? 'none'}): it no longer writes`);
  }

  async #withClient<T>(doing: string, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw storeError(err, this.#url, doing);
    }
    try {
      const out = await work(client);
      client.release();
      return out;
    } catch (err) {
      // A connection that failed mid-way is not given back to the pool.
      client.release(err instanceof Error ? err : true);
      throw storeError(err, this.#url, doing);
    }
  }
}

/** Whether `list` is `before` with executions appended (what the hub does): nothing was removed. */
function extends_(list: readonly ExecutionRecord[], before: readonly ExecutionRecord[]): boolean {
  if (list.length < before.length) return false;
  for (let i = 0; i < before.length; i++) if (list[i] !== before[i]) return false;
  return true;
}

/** The executions of `before` no longer in `list`, by node and attempt (the rare slow path). */
function removedFrom(wpkId: string, before: readonly ExecutionRecord[], list: readonly ExecutionRecord[]): Array<{ wpk_id: string; node_id: string; attempt: number }> {
  const now = new Set(list.map(executionKey));
  return before.filter((e) => !now.has(executionKey(e))).map((e) => ({ wpk_id: wpkId, node_id: e.node_id, attempt: e.attempt }));
}
