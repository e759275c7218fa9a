// @ts-check
/**
 * The live work-package list (newest first, at most 200, as the feed keeps
 * it) and the details of the one the operator clicks. Rows are keyed by
 * WPK id and rewritten only when that WPK changed; running durations tick.
 */
import { duration, known, make, setText } from './format.js';
import { WPK_STATES } from './store.js';

/**
 * @typedef {import('./store.js').WpkView} WpkView
 * @typedef {HTMLTableRowElement & { cells_: Record<string, HTMLElement>, badge: HTMLElement, wpk: WpkView|null }} WpkRow
 * @param {import('./store.js').Store} store
 * @param {{ now: () => number, api: ReturnType<typeof import('./api.js').createApi> }} opts
 */
export function createWpkList(store, opts) {
  const tbody = /** @type {HTMLElement} */ (document.getElementById('wpk-rows'));
  const empty = /** @type {HTMLElement} */ (document.getElementById('wpk-empty'));
  const details = /** @type {HTMLElement} */ (document.getElementById('wpk-details'));
  const detailsTitle = /** @type {HTMLElement} */ (document.getElementById('wpk-details-title'));
  const detailsBody = /** @type {HTMLElement} */ (document.getElementById('wpk-details-body'));
  const detailsClose = /** @type {HTMLButtonElement} */ (document.getElementById('wpk-details-close'));
  /** @type {Map<string, WpkRow>} */
  const rows = new Map();
  let selected = '';
  let shownUpdatedAt = 0;

  detailsClose.addEventListener('click', () => { details.hidden = true; selected = ''; });
  tbody.addEventListener('click', (ev) => open(ev.target));
  tbody.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open(ev.target); });

  /** @param {EventTarget|null} target */
  function open(target) {
    const row = target instanceof Element ? target.closest('tr[data-wpk-id]') : null;
    if (row instanceof HTMLElement && row.dataset.wpkId) show(row.dataset.wpkId).catch(() => undefined);
  }

  /** GET /federation/wpk/:id: params, executions and result, as JSON text. @param {string} id */
  async function show(id) {
    selected = id;
    shownUpdatedAt = store.wpks.find((w) => w.wpk_id === id)?.updated_at ?? 0;
    details.hidden = false;
    detailsTitle.textContent = id;
    detailsBody.textContent = 'loading…';
    /** @type {import('./api.js').ApiResult<import('../lib/api.js').ApiWpk>} */
    const res = await opts.api.get(`/federation/wpk/${encodeURIComponent(id)}`);
    if (selected !== id) return;
    detailsBody.textContent = res.ok ? JSON.stringify(res.body, null, 2) : `${res.message}`;
  }

  /** @param {boolean} changed the store's list changed @param {boolean} tick */
  function update(changed, tick) {
    const now = opts.now();
    if (changed) {
      const keep = new Set(store.wpks.map((w) => w.wpk_id));
      for (const [id, row] of rows) if (!keep.has(id)) { row.remove(); rows.delete(id); }
      let cursor = /** @type {ChildNode|null} */ (tbody.firstChild);
      for (const w of store.wpks) {
        let row = rows.get(w.wpk_id);
        if (!row) { row = makeRow(); rows.set(w.wpk_id, row); }
        if (row.wpk !== w) fill(row, w, now);
        // Moves a row only when it is out of place: a new WPK on top moves nothing else.
        if (row !== cursor) tbody.insertBefore(row, cursor);
        else cursor = cursor.nextSibling;
      }
      empty.hidden = store.wpks.length > 0;
      // The open details follow the WPK they show (once per change, not per frame).
      const shownWpk = selected && !details.hidden ? store.wpks.find((w) => w.wpk_id === selected) : undefined;
      if (shownWpk && shownWpk.updated_at !== shownUpdatedAt) show(selected).catch(() => undefined);
    }
    if (tick || changed) for (const row of rows.values()) if (row.wpk && row.wpk.finished_at === null) setText(row.cells_.duration, duration(now - row.wpk.created_at));
  }

  return { update };
}

/**
 * Four columns fit the side panel at 1400 px without cutting what matters:
 * the work (capability · action, its id under it), who runs it (the node,
 * or a mode-all WPK's progress, which may wrap), and how long.
 */
const COLUMNS = ['state', 'work', 'assignee', 'duration'];

/** @returns {WpkRow} */
function makeRow() {
  const row = /** @type {WpkRow} */ (document.createElement('tr'));
  row.tabIndex = 0;
  row.cells_ = {};
  for (const col of COLUMNS) {
    const td = make('td', `w-${col}`);
    td.dataset.col = col;
    row.cells_[col] = td;
    row.appendChild(td);
  }
  row.badge = row.cells_.state.appendChild(make('span', 'badge'));
  row.cells_.what = row.cells_.work.appendChild(make('div', 'w-what'));
  row.cells_.id = row.cells_.work.appendChild(make('div', 'w-id'));
  row.wpk = null;
  return row;
}

/** @param {WpkRow} row @param {WpkView} w @param {number} now */
function fill(row, w, now) {
  row.wpk = w;
  row.dataset.wpkId = w.wpk_id;
  row.dataset.state = w.state;
  setText(row.badge, w.state.replace('_', ' '));
  row.badge.className = `badge wpk-${known(w.state, WPK_STATES)}`;
  row.badge.title = w.error ?? '';
  setText(row.cells_.what, `${w.capability} · ${w.action}`);
  setText(row.cells_.assignee, who(w));
  setText(row.cells_.duration, duration((w.finished_at ?? now) - w.created_at));
  setText(row.cells_.id, w.wpk_id);
  row.title = w.error ? `${w.wpk_id}: ${w.error}` : w.wpk_id;
}

/** A scheduled WPK's start, a mode-all WPK's progress, or the node running a mode-one WPK (and its attempt after the first). @param {WpkView} w */
function who(w) {
  if (w.state === 'scheduled') return `starts ${clock(w.start_at ?? w.created_at)}`;
  if (w.mode === 'all') return summary(w);
  if (w.assignee === null) return '–';
  return w.attempt > 1 ? `${w.assignee} (attempt ${w.attempt})` : w.assignee;
}

/** Execution states in the order a rollout moves through them: what is done first, what waits last. */
const PROGRESS_ORDER = ['succeeded', 'failed', 'rejected', 'timed_out', 'lost', 'canceled', 'running', 'accepted', 'dispatched', 'queued', 'skipped'];

/** Mode all: "3 succeeded, 1 running, 40 queued · 60/min". @param {WpkView} w */
function summary(w) {
  const counts = /** @type {Record<string, number>} */ (w.summary ?? {});
  const parts = PROGRESS_ORDER.filter((s) => (counts[s] ?? 0) > 0).map((s) => `${counts[s]} ${s.replace('_', ' ')}`);
  const text = parts.length > 0 ? parts.join(', ') : w.continuous ? 'nodes as they come' : 'all nodes';
  // The pace only matters while the rollout is going.
  return w.rollout_rate_per_minute !== null && w.finished_at === null ? `${text} · ${round(w.rollout_rate_per_minute)}/min` : text;
}

/** @param {number} n */
function round(n) {
  return Math.round(n * 10) / 10;
}

/** "14:05" in the page's time zone. @param {number} epochMs */
function clock(epochMs) {
  return new Date(epochMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}
