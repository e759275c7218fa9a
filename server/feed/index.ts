/**
 * The live feed behind the dashboard (`GET /federation/events`): a snapshot
 * on connect, then what changed, batched every 500 ms, and a stats point
 * every second. Changes are found by comparing each node's signature between
 * ticks rather than by hooks on every heartbeat: 5,000 nodes cost well under
 * a millisecond a tick, the hot path pays nothing, and nothing runs while no
 * page is open. One serialisation per tick serves every open page.
 */
import { FEED_MAX_NODES, FEED_MAX_WPKS } from '../../lib/limits.js';
import { VERSION } from '../../lib/version.js';
import type { HubApi, NodeRecord } from '../../hub/index.js';
import type { FeedNodesEvent, FeedSnapshot, FeedStatsEvent, FeedWpksEvent } from '../../lib/api.js';
import type { ActivitySeries } from './activity.js';
import { fleetCounts, nodeSignature, nodeView, wpkView, type NodeView, type WpkView } from './views.js';

export type { FleetCounts, NodeView, WpkView } from './views.js';

/** One open page: gets each event as its name and serialised JSON data. */
export interface FeedClient {
  send(event: string, data: string): void;
  /** A comment line, to keep proxies from closing an idle stream. */
  ping(): void;
}

export interface FeedOptions {
  /** How often changes are gathered and sent (default 500 ms). */
  batchMs?: number;
  /** How often a stats point goes out (default 1000 ms). */
  statsMs?: number;
  /** Keepalive comment interval (default 15 s). */
  pingMs?: number;
  /** Work packages a page holds: the newest ones (default 200). */
  maxWpks?: number;
  /** Nodes a page is kept posted on: the first ones by node id (default FEED_MAX_NODES). */
  maxNodes?: number;
  /** `auth` as the snapshot tells the page. */
  auth: 'jwt' | 'none';
  /** The per-second series of the dashboard's chart. */
  activity: ActivitySeries;
}

export class FleetFeed {
  readonly #clients = new Set<FeedClient>();
  readonly #nodeSigs = new Map<string, string>();
  readonly #wpkSeen = new Map<string, number>();
  readonly #o: Required<FeedOptions>;
  #timers: NodeJS.Timeout[] = [];
  /** The second of the last stats point sent. */
  #lastPoint = 0;

  constructor(private readonly hub: HubApi, options: FeedOptions) {
    this.#o = { batchMs: 500, statsMs: 1000, pingMs: 15_000, maxWpks: FEED_MAX_WPKS, maxNodes: FEED_MAX_NODES, ...options };
  }

  get clients(): number { return this.#clients.size; }

  /** Sends the snapshot to a new page and keeps it posted; returns the function that lets it go. */
  subscribe(client: FeedClient): () => void {
    if (this.#clients.size === 0) this.#start();
    this.#clients.add(client);
    client.send('snapshot', JSON.stringify(this.#snapshot()));
    return () => this.#unsubscribe(client);
  }

  /** Lets every page go and stops the timers (the HTTP API is closing). */
  close(): void {
    this.#clients.clear();
    this.#stop();
  }

  #unsubscribe(client: FeedClient): void {
    this.#clients.delete(client);
    if (this.#clients.size === 0) this.#stop();
  }

  #start(): void {
    // The baseline of the diffs: a page's snapshot is at least this new.
    this.#diffNodes();
    this.#diffWpks();
    this.#lastPoint = this.#o.activity.last()?.t ?? 0;
    this.#timers = [
      setInterval(() => this.#tick(), this.#o.batchMs),
      setInterval(() => this.#stats(), this.#o.statsMs),
      setInterval(() => { for (const c of this.#clients) c.ping(); }, this.#o.pingMs),
    ];
    for (const t of this.#timers) t.unref();
  }

  #stop(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#nodeSigs.clear();
    this.#wpkSeen.clear();
  }

  #tick(): void {
    const nodes = this.#diffNodes();
    if (nodes.upsert.length > 0 || nodes.remove.length > 0) this.#broadcast('nodes', nodes);
    const wpks = this.#diffWpks();
    if (wpks.length > 0) this.#broadcast('wpks', { upsert: wpks } satisfies FeedWpksEvent);
  }

  /**
   * The seconds that closed since the last stats event, one event each: a
   * timer that fired late (a busy loop) must not leave a gap in the chart.
   */
  #stats(): void {
    const counts = fleetCounts(this.hub);
    const connected = this.hub.connected;
    const fresh = this.#o.activity.points().filter((p) => p.t > this.#lastPoint);
    if (fresh.length === 0) return this.#broadcast('stats', { now: Date.now(), point: null, counts, connected } satisfies FeedStatsEvent);
    for (const point of fresh) this.#broadcast('stats', { now: Date.now(), point, counts, connected } satisfies FeedStatsEvent);
    this.#lastPoint = fresh.at(-1)!.t;
  }

  #broadcast(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    const text = JSON.stringify(data);
    // A copy: a client that fails may unsubscribe itself while we iterate.
    for (const c of [...this.#clients]) c.send(event, text);
  }

  /**
   * The nodes pages are posted on: every node while the fleet fits the
   * window (unordered, the cheap walk), else the first maxNodes by node id.
   */
  #window(): Iterable<NodeRecord> {
    const total = this.#total();
    return total <= this.#o.maxNodes ? this.hub.eachNode() : this.hub.nodePage({}, { limit: this.#o.maxNodes }).nodes;
  }

  #total(): number {
    return Object.values(this.hub.countNodesByStatus()).reduce((a, b) => a + b, 0);
  }

  #snapshot(): FeedSnapshot {
    const nodes: NodeView[] = [];
    for (const r of this.#window()) nodes.push(nodeView(r, this.hub.wpks.inFlightOn(r.node_id)));
    return {
      now: Date.now(),
      hub: { boot_id: this.hub.bootId, version: VERSION, auth: this.#o.auth, connected: this.hub.connected },
      nodes,
      nodes_total: this.#total(),
      wpks: this.hub.wpks.list({ limit: this.#o.maxWpks }).map(wpkView),
      series: this.#o.activity.points(),
      counts: fleetCounts(this.hub),
    };
  }

  /** Nodes of the window whose signature moved since the last tick, and the ones that left it (forgotten, or pushed out). */
  #diffNodes(): FeedNodesEvent {
    const upsert: NodeView[] = [];
    const present = new Set<string>();
    for (const r of this.#window()) {
      present.add(r.node_id);
      const running = this.hub.wpks.inFlightOn(r.node_id);
      const sig = nodeSignature(r, running);
      if (this.#nodeSigs.get(r.node_id) === sig) continue;
      this.#nodeSigs.set(r.node_id, sig);
      upsert.push(nodeView(r, running));
    }
    const remove: string[] = [];
    if (present.size !== this.#nodeSigs.size) {
      for (const id of this.#nodeSigs.keys()) if (!present.has(id)) remove.push(id);
      for (const id of remove) this.#nodeSigs.delete(id);
    }
    return { upsert, remove };
  }

  /** The newest WPKs that are new or changed since the last tick. */
  #diffWpks(): WpkView[] {
    const out: WpkView[] = [];
    const newest = this.hub.wpks.list({ limit: this.#o.maxWpks });
    for (const w of newest) {
      if (this.#wpkSeen.get(w.wpk_id) === w.updated_at) continue;
      out.push(wpkView(w));
    }
    this.#wpkSeen.clear();
    for (const w of newest) this.#wpkSeen.set(w.wpk_id, w.updated_at);
    return out;
  }
}
