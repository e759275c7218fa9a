// @ts-check
/**
 * The node table, virtualised: every row has the same height, so the rows in
 * view follow from scrollTop alone. Only those (plus a small overscan) exist
 * in the DOM, in a pool of row elements reused as the view scrolls; an update
 * rewrites the cells of visible rows whose node changed, nothing else.
 * Filtering is a linear pass over a list kept sorted by node id; the sort
 * runs again only when nodes join or leave.
 *
 * A fleet larger than the feed's window (FEED_MAX_NODES, the first nodes by
 * id) shows a pager: "next" reads the following page from the API
 * (`GET /federation/nodes?limit=&after=`, with the status filter), "live"
 * goes back to the window the feed keeps posted. A page from the API is a
 * still picture until it is read again.
 */
import { ago, count, known, loadText, make, setText } from './format.js';
import { NODE_STATUSES } from './store.js';

export const ROW_HEIGHT = 34;
/** Nodes per page read from the API. */
export const PAGE_SIZE = 500;
const OVERSCAN = 6;
const COLUMNS = ['node', 'status', 'caps', 'labels', 'seen', 'load', 'running'];
const collator = new Intl.Collator('en', { numeric: true });

/**
 * @typedef {import('./store.js').NodeView} NodeView
 * @typedef {import('./store.js').Store} Store
 * @typedef {HTMLElement & { cells: Record<string, HTMLElement>, bar: HTMLElement, reason: HTMLElement, badge: HTMLElement, sync: HTMLElement, node: NodeView|null }} Row
 * @typedef {{ get: <T>(path: string) => Promise<import('./api.js').ApiResult<T>> }} Api
 * @param {Store} store @param {{ now: () => number, onChange: () => void, onSelect?: (nodeId: string) => void, api?: Api }} opts
 */
export function createNodesTable(store, opts) {
  const viewport = /** @type {HTMLElement} */ (document.getElementById('nodes-viewport'));
  const spacer = /** @type {HTMLElement} */ (document.getElementById('nodes-spacer'));
  const rowsEl = /** @type {HTMLElement} */ (document.getElementById('nodes-rows'));
  const empty = /** @type {HTMLElement} */ (document.getElementById('nodes-empty'));
  const shown = /** @type {HTMLElement} */ (document.getElementById('nodes-shown'));
  const statusFilter = /** @type {HTMLSelectElement} */ (document.getElementById('node-status-filter'));
  const search = /** @type {HTMLInputElement} */ (document.getElementById('node-search'));
  const sortButton = /** @type {HTMLButtonElement} */ (document.getElementById('sort-node-id'));

  /** Every node id, sorted; rebuilt only when membership changes. @type {string[]} */
  let sortedIds = [];
  /** The ids that pass the filter, in display order. @type {string[]} */
  let view = [];
  let descending = false;
  let needsFilter = true;
  /** @type {Row[]} */
  const pool = [];
  const pager = createPager(store, opts, () => { needsFilter = true; sortedIds = []; membershipChanged = true; viewport.scrollTop = 0; opts.onChange(); });
  let membershipChanged = true;
  /** The nodes shown: the feed's window, or a page read from the API. */
  const source = () => pager.page ?? store.nodes;

  const filterChanged = () => { needsFilter = true; viewport.scrollTop = 0; if (pager.page) void pager.reload(statusFilter.value); opts.onChange(); };
  statusFilter.addEventListener('change', filterChanged);
  search.addEventListener('input', filterChanged);
  sortButton.addEventListener('click', () => {
    descending = !descending;
    sortButton.dataset.dir = descending ? 'desc' : 'asc';
    sortButton.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
    needsFilter = true;
    opts.onChange();
  });
  viewport.addEventListener('scroll', () => opts.onChange(), { passive: true });
  // A click on a row shows that node's desired state and delta (dashboard/node-state.js).
  rowsEl.addEventListener('click', (e) => {
    const row = /** @type {HTMLElement|null} */ (e.target instanceof Element ? e.target.closest('.row') : null);
    if (row?.dataset.nodeId && opts.onSelect) opts.onSelect(row.dataset.nodeId);
  });
  new ResizeObserver(() => opts.onChange()).observe(viewport);

  /** @param {NodeView} n @param {string} status @param {string} q */
  function matches(n, status, q) {
    if (status && n.status !== status) return false;
    if (!q) return true;
    if (n.node_id.toLowerCase().includes(q)) return true;
    if (n.capabilities.some((c) => c.toLowerCase().includes(q))) return true;
    for (const [k, v] of Object.entries(n.labels ?? {})) {
      if (`${k}=${v}`.toLowerCase().includes(q)) return true;
    }
    return false;
  }

  function refilter() {
    const status = statusFilter.value;
    const q = search.value.trim().toLowerCase();
    const out = [];
    const nodes = source();
    for (const id of sortedIds) {
      const n = nodes.get(id);
      if (n && matches(n, status, q)) out.push(id);
    }
    if (descending) out.reverse();
    view = out;
  }

  /** The frame's work: what changed in the store, then the rows in view. @param {import('./store.js').Dirty} dirty @param {boolean} tick */
  function update(dirty, tick) {
    if ((dirty.membership && !pager.page) || membershipChanged) {
      sortedIds = [...source().keys()].sort(collator.compare);
      needsFilter = true;
      membershipChanged = false;
    }
    pager.show(statusFilter.value);
    // A status, label or capability change can move a node in or out of the filter.
    if (dirty.nodes.size > 0 && (statusFilter.value || search.value.trim())) needsFilter = true;
    if (needsFilter) {
      refilter();
      needsFilter = false;
    }
    render(dirty.snapshot || tick);
  }

  /** @param {boolean} all rewrite every visible row, not only changed ones */
  function render(all) {
    spacer.style.height = `${view.length * ROW_HEIGHT}px`;
    const height = viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(view.length, Math.ceil((viewport.scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
    const needed = Math.max(0, last - first);
    while (pool.length < needed) pool.push(rowsEl.appendChild(makeRow()));
    rowsEl.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const now = opts.now();
    for (let i = 0; i < pool.length; i += 1) {
      const row = pool[i];
      const id = i < needed ? view[first + i] : undefined;
      const node = id === undefined ? undefined : source().get(id);
      row.hidden = node === undefined;
      if (node === undefined) continue;
      if (all || row.node !== node) fill(row, node, now);
      row.classList.toggle('odd', (first + i) % 2 === 1);
    }
    empty.hidden = view.length > 0;
    const held = source().size;
    setText(shown, view.length === held ? `${count(view.length)} nodes` : `${count(view.length)} of ${count(held)} nodes`);
  }

  return { update };
}

/**
 * Paging through a fleet larger than the feed's window. `page` is null
 * while the table shows the live window.
 * @param {Store} store @param {{ api?: Api }} opts @param {() => void} changed
 */
function createPager(store, opts, changed) {
  const bar = /** @type {HTMLElement} */ (document.getElementById('nodes-pager'));
  const label = /** @type {HTMLElement} */ (document.getElementById('nodes-window'));
  const live = /** @type {HTMLButtonElement} */ (document.getElementById('nodes-live'));
  const prev = /** @type {HTMLButtonElement} */ (document.getElementById('nodes-prev'));
  const next = /** @type {HTMLButtonElement} */ (document.getElementById('nodes-next'));
  const state = {
    /** @type {Map<string, NodeView>|null} */ page: null,
    /** Cursors of the pages shown so far (null: the first page); the last is the current one's. @type {(string|null)[]} */ cursors: [],
    /** @type {string|null} */ nextCursor: null,
    status: '',
  };

  /** @param {string|null} after @param {string} status */
  async function load(after, status) {
    if (!opts.api) return false;
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (after !== null) q.set('after', after);
    if (status) q.set('status', status);
    const res = await opts.api.get(`/federation/nodes?${q}`);
    if (!res.ok || !res.body) {
      setText(label, `could not read the page: ${res.ok ? 'no answer' : res.message}`);
      return false;
    }
    const body = /** @type {import('../lib/api.js').ApiNodeList} */ (res.body);
    /** @type {Map<string, NodeView>} */
    const page = new Map();
    for (const n of body.nodes) page.set(n.node_id, { ...n, running: n.running_wpks ?? 0, unresponsive: n.unresponsive_since !== null });
    state.page = page;
    state.nextCursor = body.next;
    state.status = status;
    changed();
    return true;
  }

  next.addEventListener('click', () => {
    // From the live window, the next page starts after its last node id.
    const after = state.page ? state.nextCursor : [...store.nodes.keys()].sort(collator.compare).at(-1) ?? null;
    void load(after, state.page ? state.status : '').then((ok) => { if (ok) state.cursors.push(after); });
  });
  prev.addEventListener('click', () => {
    if (state.cursors.length <= 1) { goLive(); return; }
    state.cursors.pop();
    void load(state.cursors.at(-1) ?? null, state.status);
  });
  live.addEventListener('click', goLive);

  function goLive() {
    state.page = null;
    state.cursors = [];
    state.nextCursor = null;
    changed();
  }

  return {
    get page() { return state.page; },
    /** The status filter changed while paging: read the first page under it. @param {string} status */
    reload(status) {
      state.cursors = [null];
      return load(null, status);
    },
    /** Shows the pager when there is more than the window holds. @param {string} status */
    show(status) {
      const windowed = store.nodesTotal > store.nodes.size;
      bar.hidden = !windowed && !state.page;
      if (bar.hidden) return;
      live.disabled = !state.page;
      prev.disabled = !state.page;
      next.disabled = state.page ? state.nextCursor === null : false;
      setText(label, state.page
        ? `${count(state.page.size)} of ${count(store.nodesTotal)} nodes read from the API${status ? ` (${status})` : ''}: a still picture`
        : `live: the first ${count(store.nodes.size)} of ${count(store.nodesTotal)} nodes by id`);
    },
  };
}

/** @returns {Row} */
function makeRow() {
  const row = /** @type {Row} */ (make('div', 'row'));
  row.setAttribute('role', 'row');
  row.cells = {};
  for (const col of COLUMNS) {
    const cell = make('span', `cell c-${col}`);
    cell.setAttribute('role', 'cell');
    cell.dataset.col = col;
    row.cells[col] = cell;
    row.appendChild(cell);
  }
  row.badge = row.cells.status.appendChild(make('span', 'badge'));
  row.reason = row.cells.status.appendChild(make('span', 'reason'));
  row.sync = row.cells.status.appendChild(make('span', 'sync'));
  const meter = row.cells.load.appendChild(make('span', 'meter'));
  row.bar = meter.appendChild(make('span', 'meter-bar'));
  row.cells.loadText = row.cells.load.appendChild(make('span', 'meter-text'));
  row.node = null;
  return row;
}

/** @param {Row} row @param {NodeView} n @param {number} now */
function fill(row, n, now) {
  row.node = n;
  row.dataset.nodeId = n.node_id;
  row.dataset.status = n.status;
  setText(row.cells.node, n.node_id);
  row.cells.node.title = n.node_id;
  setText(row.badge, n.status);
  row.badge.className = `badge status-${known(n.status, NODE_STATUSES)}`;
  setText(row.reason, n.status_reason ?? (n.unresponsive ? 'unresponsive' : ''));
  row.reason.title = n.unresponsive ? 'it let a trigger time out unaccepted: no new work until it shows life' : '';
  setText(row.sync, n.in_sync === false ? (n.state_error ? 'state error' : 'out of sync') : '');
  row.sync.title = n.in_sync === false ? `desired state v${n.state_version} not applied${n.state_error ? `: ${n.state_error}` : ''}; click for the delta` : '';
  const caps = n.capabilities.join(', ');
  setText(row.cells.caps, caps);
  row.cells.caps.title = caps;
  const labels = Object.entries(n.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(' ');
  setText(row.cells.labels, labels);
  row.cells.labels.title = labels;
  setText(row.cells.seen, ago(n.last_seen, now));
  row.cells.seen.title = n.last_seen ? new Date(n.last_seen).toISOString() : '';
  setText(row.cells.loadText, loadText(n.load));
  const fraction = typeof n.load === 'number' && Number.isFinite(n.load) ? Math.min(1, Math.max(0, n.load)) : 0;
  row.bar.style.width = `${Math.round(fraction * 100)}%`;
  row.bar.classList.toggle('hot', fraction >= 0.85);
  setText(row.cells.running, String(n.running ?? 0));
}
