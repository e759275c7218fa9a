// @ts-check
/**
 * Wiring: the feed writes into the store, and one requestAnimationFrame per
 * burst of events redraws what changed. Events arrive every 500 ms at most;
 * a clock tick each second refreshes "last seen" and running durations.
 */
import { createApi } from './api.js';
import { createAuth } from './auth.js';
import { createChart } from './chart.js';
import { createFeed } from './feed.js';
import { createHeader } from './header.js';
import { createNodesTable } from './nodes-table.js';
import { createNodeState } from './node-state.js';
import { applyEvent, createStore, hubNow, takeDirty } from './store.js';
import { createTriggerForm } from './trigger.js';
import { createWpkList } from './wpks.js';

const store = createStore();
const now = () => hubNow(store);
let framePending = false;
let tickPending = false;

function schedule() {
  if (framePending) return;
  framePending = true;
  requestAnimationFrame(frame);
}

const auth = createAuth({ onChange: () => feed.start() });
const api = createApi({ token: auth.token, onUnauthorized: (message) => auth.require(message) });
const statusFilter = /** @type {HTMLSelectElement} */ (document.getElementById('node-status-filter'));
const search = /** @type {HTMLInputElement} */ (document.getElementById('node-search'));
const header = createHeader(store, {
  filterStatus: (s) => { statusFilter.value = s; statusFilter.dispatchEvent(new Event('change')); },
  search: (q) => { search.value = q; search.dispatchEvent(new Event('input')); },
});
const nodeState = createNodeState({ api });
const table = createNodesTable(store, { now, api, onChange: schedule, onSelect: (id) => void nodeState.show(id) });
const chart = createChart(/** @type {HTMLCanvasElement} */ (document.getElementById('chart')));
const wpks = createWpkList(store, { now, api });
const trigger = createTriggerForm({ api, capabilities: () => Object.keys(store.counts?.capabilities ?? {}).sort() });

const feed = createFeed({
  url: '/federation/events',
  token: auth.token,
  onEvent: (type, data) => {
    applyEvent(store, type, data);
    schedule();
  },
  onState: (state, detail) => header.connection(state, detail),
  onRefused: (status, message) => auth.require(status === 403 ? `This token may not read the live feed: ${message}` : message),
});

function frame() {
  framePending = false;
  const tick = tickPending;
  tickPending = false;
  const dirty = takeDirty(store);
  if (dirty.hub) {
    header.hub();
    auth.setHubAuth(store.hub?.auth ?? '');
  }
  if (dirty.counts) {
    header.counts();
    trigger.refreshCapabilities();
  }
  table.update(dirty, tick);
  wpks.update(dirty.wpks, tick);
  if (dirty.series || tick) chart.draw(store.series, now());
}

setInterval(() => {
  tickPending = true;
  schedule();
}, 1000);

feed.start();
