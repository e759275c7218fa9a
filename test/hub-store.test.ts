/**
 * The hub against the Store seam: what reaches the store is changes, never
 * the whole registry; liveness goes apart; a failed write is retried with
 * its changes; and MQTT and HTTP registrations come through one door.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NodeRecord } from '../hub/registry.js';
import type { NodeChanges, Store, StoredState, WpkChanges } from '../hub/store/types.js';
import { topics } from '../lib/topics.js';
import type { Federation } from '../server/federation.js';
import { api, closeAll, device, federation, post, registration } from './helpers/federation.js';
import { waitFor, withTimeout } from './helpers/time.js';

const t = topics();

/** A Store that records every batch; `failNext` makes the next node write fail. */
class RecordingStore implements Store {
  readonly nodeBatches: NodeChanges[] = [];
  readonly wpkBatches: WpkChanges[] = [];
  failNext = 0;
  closed = false;
  constructor(private readonly initial: StoredState = { nodes: [], wpks: [] }) {}
  async load(): Promise<StoredState> { return structuredClone(this.initial); }
  async writeNodes(changes: NodeChanges): Promise<void> {
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error('EIO: injected');
    }
    this.nodeBatches.push(structuredClone(changes));
  }
  async writeWpks(changes: WpkChanges): Promise<void> { this.wpkBatches.push(structuredClone(changes)); }
  async close(): Promise<void> { this.closed = true; }
  upsertedIds(): string[] { return this.nodeBatches.flatMap((b) => b.upserted.map((r) => r.node_id)); }
}

interface Ctx { fed?: Federation }
const test = suite<Ctx>('hub: the Store seam', {});
test.after.each(async (ctx) => { await ctx.fed?.stop(); ctx.fed = undefined; });
const T = (label: string, fn: (ctx: Ctx) => Promise<void>) => test(label, (ctx) => withTimeout(fn(ctx), 8000, label));
const fast = { soonMs: 5, lazyMs: 5, costFactor: 0 };

T('a status change writes that node alone, not the registry', async (ctx) => {
  const store = new RecordingStore();
  const fed = (ctx.fed = await federation({ hub: { store, flush: fast } }));
  const dev = await device(fed, 'op');
  try {
    for (const id of ['n1', 'n2', 'n3']) await dev.publishAsync(t.registration(id), JSON.stringify(registration(id)), { qos: 1, retain: true });
    await waitFor(() => ['n1', 'n2', 'n3'].every((id) => store.upsertedIds().includes(id)), { label: 'three nodes written' });
    const before = store.nodeBatches.length;
    await dev.publishAsync(t.status('n2'), JSON.stringify({ state: 'offline', reason: 'shutdown', boot_id: 'boot-n2', ts: Date.now() }), { qos: 1, retain: true });
    await waitFor(() => store.nodeBatches.length > before, { label: 'the status written' });
    const batch = store.nodeBatches.at(-1)!;
    assert.equal(batch.upserted.map((r) => r.node_id), ['n2']);
    assert.is(batch.upserted[0]!.status, 'offline');
    assert.equal(batch.removed, []);
  } finally {
    await closeAll(dev);
  }
});

T('heartbeats of an active node reach the store as liveness only', async (ctx) => {
  const store = new RecordingStore();
  const fed = (ctx.fed = await federation({ hub: { store, flush: fast } }));
  const dev = await device(fed, 'hb');
  try {
    await dev.publishAsync(t.registration('hb'), JSON.stringify(registration('hb')), { qos: 1, retain: true });
    await waitFor(() => store.upsertedIds().includes('hb'), { label: 'registered' });
    await dev.publishAsync(t.heartbeat('hb'), JSON.stringify({ seq: 1, ts: Date.now(), load: 0.75 }), { qos: 1 });
    const batch = await waitFor(() => store.nodeBatches.find((b) => b.liveness.length > 0), { label: 'a liveness batch' });
    assert.equal(batch.upserted, [], 'the record is not rewritten for a beat');
    assert.is(batch.liveness[0]!.node_id, 'hb');
    assert.is(batch.liveness[0]!.load, 0.75);
  } finally {
    await closeAll(dev);
  }
});

T('a failed write is counted, and its changes go with the retry', async (ctx) => {
  const store = new RecordingStore();
  store.failNext = 1;
  const fed = (ctx.fed = await federation({ hub: { store, flush: fast } }));
  const res = await api(fed, '/federation/register', post({ node_id: 'http-1', capabilities: ['monitoring'] }));
  assert.is(res.status, 201);
  await waitFor(() => store.upsertedIds().includes('http-1'), { label: 'written on the retry' });
  assert.is(fed.hub.counters().flush_errors, 1);
  assert.is(store.failNext, 0);
});

T('MQTT and HTTP registrations go through one door: same counters, events and store', async (ctx) => {
  const store = new RecordingStore();
  const fed = (ctx.fed = await federation({ hub: { store, flush: fast } }));
  const changed: string[] = [];
  fed.hub.events.nodeChanged.add((id) => changed.push(id));
  const dev = await device(fed, 'door');
  try {
    await dev.publishAsync(t.registration('via-mqtt'), JSON.stringify(registration('via-mqtt')), { qos: 1, retain: true });
    await waitFor(() => fed.hub.node('via-mqtt')?.status === 'active', { label: 'MQTT registration' });
    await api(fed, '/federation/register', post({ node_id: 'via-http', capabilities: ['monitoring'] }));
    await waitFor(() => store.upsertedIds().includes('via-mqtt') && store.upsertedIds().includes('via-http'), { label: 'both written' });
    assert.is(fed.hub.counters().registrations, 2);
    assert.equal(changed.sort(), ['via-http', 'via-mqtt']);
  } finally {
    await closeAll(dev);
  }
});

T('restored active nodes come back stale, and that is written; the store is closed on stop', async (ctx) => {
  const fed0 = await federation();
  const old = (await api<NodeRecord>(fed0, '/federation/register', post({ node_id: 'was-active', capabilities: ['monitoring'] })), fed0.hub.node('was-active')!);
  await fed0.stop();
  const store = new RecordingStore({ nodes: [{ ...old }], wpks: [] });
  const fed = (ctx.fed = await federation({ hub: { store, flush: fast } }));
  assert.is(fed.hub.node('was-active')?.status, 'stale');
  const batch = await waitFor(() => store.nodeBatches.find((b) => b.upserted.some((r) => r.node_id === 'was-active')), { label: 'demotion written' });
  assert.is(batch.upserted[0]!.status_reason, 'restored');
  await fed.stop();
  ctx.fed = undefined;
  assert.ok(store.closed);
});

T('a created work package is written as a change of its own', async (ctx) => {
  const store = new RecordingStore();
  const fed = (ctx.fed = await federation({ hub: { store, flush: fast } }));
  const w = await fed.hub.wpks.create({ capability: 'monitoring', action: 'echo' });
  const batch = store.wpkBatches.find((b) => b.upserted.some((x) => x.wpk_id === w.wpk_id));
  assert.ok(batch, 'on the store before create() resolved');
  assert.is(batch!.upserted.length, 1);
});

test.run();
