// @ts-check
/**
 * The fleet at a glance: nodes per status, per capability, work packages per
 * state, the hub's identity and whether the page is live. Clicking a status
 * or a capability narrows the node table to it.
 */
import { count, make, setText } from './format.js';
import { NODE_STATUSES, WPK_STATES } from './store.js';

/** @typedef {import('./store.js').Store} Store */

/** @param {Store} store @param {{ filterStatus: (s: string) => void, search: (q: string) => void }} opts */
export function createHeader(store, opts) {
  const conn = /** @type {HTMLElement} */ (document.getElementById('conn'));
  const connText = /** @type {HTMLElement} */ (document.getElementById('conn-text'));
  const hubInfo = /** @type {HTMLElement} */ (document.getElementById('hub-info'));
  const caps = /** @type {HTMLElement} */ (document.getElementById('caps'));
  const wpkCounts = /** @type {HTMLElement} */ (document.getElementById('wpk-counts'));
  const total = /** @type {HTMLElement} */ (document.getElementById('count-total'));
  /** @type {Map<string, HTMLButtonElement>} */
  const chips = new Map();

  for (const status of NODE_STATUSES) {
    document.getElementById(`card-${status}`)?.addEventListener('click', () => opts.filterStatus(status));
  }
  document.getElementById('card-total')?.addEventListener('click', () => opts.filterStatus(''));
  caps.addEventListener('click', (ev) => {
    const chip = ev.target instanceof Element ? ev.target.closest('button[data-capability]') : null;
    if (chip instanceof HTMLElement && chip.dataset.capability) opts.search(chip.dataset.capability);
  });

  /** Whether the page hears the hub now: what the hub said of its broker is news only while it does. */
  let live = false;

  /** @param {string} state @param {string} [detail] */
  function connection(state, detail) {
    conn.dataset.state = state;
    /** @type {Record<string, string>} */
    const words = { connecting: 'connecting…', live: 'live', disconnected: 'disconnected', unauthorized: 'sign-in needed', stopped: 'stopped' };
    setText(connText, words[state] ?? state);
    conn.title = detail ?? '';
    live = state === 'live';
    hub();
  }

  function hub() {
    const h = store.hub;
    if (!h) return setText(hubInfo, 'hub: unknown');
    const broker = !live ? 'broker unknown (the page lost the hub)' : h.connected ? 'broker connected' : 'broker DISCONNECTED';
    setText(hubInfo, [`hub ${h.boot_id}`, `v${h.version}`, broker, `auth ${h.auth}`].join(' · '));
    hubInfo.dataset.connected = live ? String(h.connected) : 'unknown';
  }

  function counts() {
    const c = store.counts;
    if (!c) return;
    let sum = 0;
    for (const status of NODE_STATUSES) {
      const n = c.nodes?.[status] ?? 0;
      sum += n;
      const el = document.getElementById(`count-${status}`);
      if (el) setText(el, count(n));
    }
    setText(total, count(sum));
    total.dataset.value = String(sum);
    capabilities(c.capabilities ?? {});
    const parts = WPK_STATES.map((s) => /** @type {[string, number]} */ ([s, c.wpks?.[s] ?? 0])).filter(([, n]) => n > 0).map(([s, n]) => `${count(n)} ${String(s).replace('_', ' ')}`);
    setText(wpkCounts, parts.length > 0 ? parts.join(' · ') : 'none yet');
    const state = document.getElementById('state-counts');
    if (state && c.state) setText(state, `${count(c.state.in_sync)} in sync · ${count(c.state.out_of_sync)} out of sync`);
  }

  /** One chip per capability, most nodes first: "monitoring 41/42" (active/all). @param {Record<string, Record<string, number>>} byCap */
  function capabilities(byCap) {
    const rows = Object.entries(byCap).map(([name, s]) => {
      const all = NODE_STATUSES.reduce((a, k) => a + (s[k] ?? 0), 0);
      return { name, active: s.active ?? 0, all };
    }).sort((a, b) => b.all - a.all || (a.name < b.name ? -1 : 1));
    const keep = new Set(rows.map((r) => r.name));
    for (const [name, chip] of chips) if (!keep.has(name)) { chip.remove(); chips.delete(name); }
    rows.forEach((r, i) => {
      let chip = chips.get(r.name);
      if (!chip) {
        chip = /** @type {HTMLButtonElement} */ (make('button', 'chip'));
        chip.type = 'button';
        chip.dataset.capability = r.name;
        chip.append(make('span', 'chip-name'), make('span', 'chip-count'));
        chips.set(r.name, chip);
      }
      setText(/** @type {HTMLElement} */ (chip.firstChild), r.name);
      setText(/** @type {HTMLElement} */ (chip.lastChild), `${count(r.active)}/${count(r.all)}`);
      chip.title = `${r.name}: ${r.active} active of ${r.all}; click to show them`;
      if (caps.children[i] !== chip) caps.insertBefore(chip, caps.children[i] ?? null);
    });
  }

  return { connection, hub, counts };
}
