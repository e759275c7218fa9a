// @ts-check
/**
 * The page's copy of the fleet, fed by the events of GET /federation/events
 * (docs: the feed contract). Pure data, no DOM: every apply* records what
 * changed in `store.dirty`, and the views redraw only that, once per frame.
 */

/** The hub's lists (lib/states.ts), copied: the page loads nothing but dashboard/. @type {readonly NodeState[]} */
export const NODE_STATUSES = ['active', 'stale', 'offline', 'deregistered'];
/** @type {readonly WpkState[]} */
export const WPK_STATES = ['scheduled', 'pending', 'dispatched', 'running', 'succeeded', 'failed', 'timed_out', 'canceled', 'expired', 'aborted'];
/** @type {ReadonlySet<string>} */
export const FINAL_WPK_STATES = new Set(['succeeded', 'failed', 'timed_out', 'canceled', 'expired', 'aborted']);
/**
 * The feed sends at most 200 WPKs; the page keeps as many. The page loads nothing but
 * dashboard/, so the hub's values are copied; their types make `npm run typecheck` fail
 * if lib/limits.ts changes and these do not.
 * @type {typeof import('../lib/limits.js').FEED_MAX_WPKS}
 */
export const MAX_WPKS = 200;
/** The chart's window: five minutes. @type {typeof import('../lib/limits.js').FEED_SERIES_WINDOW_MS} */
export const SERIES_WINDOW_MS = 300_000;

/**
 * The feed's shapes are the hub's contract (lib/api.ts), checked by `npm run typecheck`.
 * @typedef {import('../lib/api.js').NodeState} NodeState
 * @typedef {import('../lib/api.js').WpkState} WpkState
 * @typedef {import('../lib/api.js').FeedNode} NodeView
 * @typedef {import('../lib/api.js').FeedWpk} WpkView
 * @typedef {import('../lib/api.js').ActivityPoint} Point
 * @typedef {import('../lib/api.js').FleetCounts} Counts
 * @typedef {import('../lib/api.js').FeedHubInfo} HubInfo
 * @typedef {{ snapshot: boolean, nodes: Set<string>, membership: boolean, wpks: boolean, series: boolean, counts: boolean, hub: boolean }} Dirty
 */

export function cleanDirty() {
  /** @type {Dirty} */
  return { snapshot: false, nodes: new Set(), membership: false, wpks: false, series: false, counts: false, hub: false };
}

export function createStore() {
  return {
    /** @type {HubInfo|null} */ hub: null,
    /** The feed's window: every node of a small fleet, the first FEED_MAX_NODES by id of a large one. @type {Map<string, NodeView>} */ nodes: new Map(),
    /** Nodes in the registry (more than `nodes.size` when the fleet is larger than the feed's window). */
    nodesTotal: 0,
    /** Newest first (by created_at), at most MAX_WPKS. @type {WpkView[]} */ wpks: [],
    /** @type {Point[]} */ series: [],
    /** @type {Counts|null} */ counts: null,
    /** Hub clock minus page clock, from the last `now` the hub sent: durations use the hub's clock. */
    clockOffsetMs: 0,
    dirty: cleanDirty(),
  };
}

/** @typedef {ReturnType<typeof createStore>} Store */

/** The hub's clock as best the page knows it. @param {Store} store */
export function hubNow(store) {
  return Date.now() + store.clockOffsetMs;
}

/**
 * Applies one feed event; unknown event types are ignored (a newer hub may send more).
 * Throws on a malformed payload, so the caller can drop the connection and resync.
 * @param {Store} store @param {string} type @param {unknown} data
 */
export function applyEvent(store, type, data) {
  // What the hub should send; each apply checks what it relies on and throws on a malformed event.
  if (type === 'snapshot') applySnapshot(store, /** @type {import('../lib/api.js').FeedSnapshot} */ (data));
  else if (type === 'nodes') applyNodes(store, /** @type {import('../lib/api.js').FeedNodesEvent} */ (data));
  else if (type === 'wpks') applyWpks(store, /** @type {import('../lib/api.js').FeedWpksEvent} */ (data));
  else if (type === 'stats') applyStats(store, /** @type {import('../lib/api.js').FeedStatsEvent} */ (data));
}

/** A snapshot replaces everything the page knew. @param {Store} store @param {import('../lib/api.js').FeedSnapshot} snap */
function applySnapshot(store, snap) {
  if (!snap || !Array.isArray(snap.nodes) || !Array.isArray(snap.wpks)) throw new Error('malformed snapshot');
  store.hub = snap.hub ?? null;
  store.nodes = new Map(snap.nodes.map((n) => [n.node_id, n]));
  store.nodesTotal = typeof snap.nodes_total === 'number' ? snap.nodes_total : snap.nodes.length;
  store.wpks = sortWpks(snap.wpks).slice(0, MAX_WPKS);
  store.series = Array.isArray(snap.series) ? trimSeries(snap.series.slice()) : [];
  store.counts = snap.counts ?? null;
  if (typeof snap.now === 'number') store.clockOffsetMs = snap.now - Date.now();
  Object.assign(store.dirty, { snapshot: true, membership: true, wpks: true, series: true, counts: true, hub: true });
}

/** @param {Store} store @param {import('../lib/api.js').FeedNodesEvent} msg */
function applyNodes(store, msg) {
  for (const node of msg.upsert ?? []) {
    if (!store.nodes.has(node.node_id)) store.dirty.membership = true;
    store.nodes.set(node.node_id, node);
    store.dirty.nodes.add(node.node_id);
  }
  for (const id of msg.remove ?? []) {
    if (store.nodes.delete(id)) store.dirty.membership = true;
  }
}

/**
 * A WPK the page does not know yet is new: it goes to the top; the oldest beyond MAX_WPKS go.
 * @param {Store} store @param {import('../lib/api.js').FeedWpksEvent} msg
 */
function applyWpks(store, msg) {
  const upserts = msg.upsert ?? [];
  if (upserts.length === 0) return;
  const byId = new Map(store.wpks.map((w) => [w.wpk_id, w]));
  for (const w of upserts) byId.set(w.wpk_id, w);
  store.wpks = sortWpks([...byId.values()]).slice(0, MAX_WPKS);
  store.dirty.wpks = true;
}

/** @param {Store} store @param {import('../lib/api.js').FeedStatsEvent} msg */
function applyStats(store, msg) {
  if (typeof msg.now === 'number') store.clockOffsetMs = msg.now - Date.now();
  if (msg.counts) {
    store.counts = msg.counts;
    if (msg.counts.nodes) store.nodesTotal = Object.values(msg.counts.nodes).reduce((a, b) => a + b, 0);
    store.dirty.counts = true;
  }
  // The hub's broker session can drop while the stream stays up: every stats event says.
  if (store.hub && typeof msg.connected === 'boolean' && msg.connected !== store.hub.connected) {
    store.hub = { ...store.hub, connected: msg.connected };
    store.dirty.hub = true;
  }
  const p = msg.point;
  if (p && typeof p.t === 'number') {
    const last = store.series[store.series.length - 1];
    if (last && last.t === p.t) store.series[store.series.length - 1] = p;
    else if (!last || p.t > last.t) store.series.push(p);
    store.series = trimSeries(store.series);
    store.dirty.series = true;
  }
}

/** @param {WpkView[]} list */
function sortWpks(list) {
  return list.sort((a, b) => b.created_at - a.created_at || (a.wpk_id < b.wpk_id ? 1 : -1));
}

/** @param {Point[]} series */
function trimSeries(series) {
  const last = series[series.length - 1];
  if (!last) return series;
  const from = last.t - SERIES_WINDOW_MS;
  let i = 0;
  while (i < series.length && series[i].t <= from) i += 1;
  return i === 0 ? series : series.slice(i);
}

/** Takes the changes recorded since the last frame. @param {Store} store */
export function takeDirty(store) {
  const dirty = store.dirty;
  store.dirty = cleanDirty();
  return dirty;
}
