/**
 * What an HA standby answers (issue 14): reads from the store, refreshed in
 * the background (a load costs ~1.5 s of CPU at 100,000 nodes, so the pause
 * between loads is at least ten loads long); every write is refused with
 * EDGEFED_ERR_STANDBY, which the HTTP API answers 503 with the active hub's
 * URL. Node statuses are the store's as the active hub last wrote them.
 */
import { stateView, type NodeStateView } from '../../hub/state/service.js';
import { isInSync } from '../../hub/state/model.js';
import { EdgefedError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { CountersSnapshot, HubApi, NodeFilter } from '../../hub/api.js';
import { newCounters } from '../../hub/counters.js';
import { filterNodes } from '../../hub/node-filter.js';
import { pageOfSorted, type NodePage, type PageRequest } from '../../hub/node-index.js';
import type { HubObservers } from '../../hub/observe.js';
import type { NodeRecord, NodeState } from '../../hub/registry.js';
import type { StoreStatus } from '../../hub/store/health.js';
import type { LeaseHolder } from '../../hub/store/pg/lease.js';
import type { StoredState } from '../../hub/store/types.js';
import { countOpenExecutions, countWpksByState, listWpks } from '../../hub/wpk/list.js';
import type { WorkPackages, WpkListFilter, WpkRecord } from '../../hub/wpk/types.js';

/** A write sent to a standby: the HTTP API answers 503 and names the active hub. */
export class StandbyError extends EdgefedError {
  override readonly name = 'StandbyError';
  constructor(readonly active: LeaseHolder | undefined) {
    super('EDGEFED_ERR_STANDBY', active?.info.api_url
      ? `this hub is a standby; send writes to the active hub ${active.holder} at ${active.info.api_url}`
      : 'this hub is a standby and no active hub is known yet; try again in a few seconds');
  }
}

export interface StandbySource {
  load(): Promise<StoredState>;
  /** The lease as last read (who is active). */
  active(): LeaseHolder | undefined;
  status(): StoreStatus;
}

export class StandbyView implements HubApi {
  readonly startedAt = Date.now();
  readonly connected = false;
  readonly registryFile = undefined;
  #nodes = new Map<string, NodeRecord>();
  #wpks: WpkRecord[] = [];
  #loadedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(readonly bootId: string, readonly log: Logger, readonly events: HubObservers, private readonly source: StandbySource) {}

  /** When the snapshot was read (epoch ms), 0 before the first. */
  get loadedAt(): number { return this.#loadedAt; }

  /** Loads now, then again in the background until stop(). */
  async start(minPauseMs = 2000): Promise<void> {
    this.#stopped = false;
    const took = await this.#refresh();
    this.#schedule(Math.max(minPauseMs, took * 10), minPauseMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(pauseMs: number, minPauseMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.#refresh().then((took) => this.#schedule(Math.max(minPauseMs, took * 10), minPauseMs), () => this.#schedule(minPauseMs * 5, minPauseMs));
    }, pauseMs);
    this.#timer.unref();
  }

  async #refresh(): Promise<number> {
    const t0 = Date.now();
    try {
      const state = await this.source.load();
      this.#nodes = new Map(state.nodes.map((r) => [r.node_id, r]));
      this.#wpks = state.wpks;
      this.#loadedAt = Date.now();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'standby could not read the store; serving the last snapshot');
      throw err;
    }
    return Date.now() - t0;
  }

  readonly wpks: WorkPackages = {
    create: () => Promise.reject(new StandbyError(this.source.active())),
    cancel: () => Promise.reject(new StandbyError(this.source.active())),
    get: (id: string) => this.#wpks.find((w) => w.wpk_id === id),
    list: (filter?: WpkListFilter) => listWpks(this.#wpks, filter),
    countByState: () => countWpksByState(this.#wpks),
    countOpenExecutions: () => countOpenExecutions(this.#wpks),
    inFlightOn: () => 0,
  };

  nodes(filter: NodeFilter = {}): NodeRecord[] { return filterNodes(this.#nodes.values(), filter); }
  nodePage(filter: NodeFilter, page: PageRequest): NodePage { return pageOfSorted(this.nodes(filter), page); }
  eachNode(): Iterable<NodeRecord> { return this.#nodes.values(); }
  node(nodeId: string): NodeRecord | undefined { return this.#nodes.get(nodeId); }

  countNodesByStatus(): Record<NodeState, number> {
    const counts: Record<NodeState, number> = { active: 0, stale: 0, offline: 0, deregistered: 0 };
    for (const r of this.#nodes.values()) counts[r.status] += 1;
    return counts;
  }

  /** A standby counts nothing: the active hub's counters are the fleet's. */
  counters(): CountersSnapshot { return newCounters(); }
  storeStatus(): StoreStatus { return this.source.status(); }
  register(): never { throw new StandbyError(this.source.active()); }
  removeNode(): never { throw new StandbyError(this.source.active()); }
  heartbeat(): never { throw new StandbyError(this.source.active()); }
  nodeState(nodeId: string): NodeStateView | undefined {
    const r = this.#nodes.get(nodeId);
    return r ? stateView(r) : undefined;
  }
  patchDesired(): never { throw new StandbyError(this.source.active()); }
  countOutOfSync(): number {
    let n = 0;
    for (const r of this.#nodes.values()) if (!isInSync(r.twin ?? null)) n += 1;
    return n;
  }
  refuse(): void { /* a standby admits nothing, so it refuses nothing of its own */ }
}
