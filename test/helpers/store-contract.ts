/**
 * The contract every Store (hub/store/types.ts) keeps, as one suite run
 * against each implementation (as MQTT.js runs abstract_store against its
 * stores): the lowdb files now, PostgreSQL next. `open` gives a fresh store
 * and a way to open the same data again (a restarted hub).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from '../../hub/registry.js';
import type { NodeRecord } from '../../hub/registry.js';
import type { Store } from '../../hub/store/types.js';
import type { WpkRecord } from '../../hub/wpk/types.js';
import { newWpk, DEFAULT_WPK } from '../../hub/wpk/model.js';

export interface StoreFixture {
  store: Store;
  /** The same data, as a restarted hub opens it. */
  reopen(): Store;
  close(): Promise<void>;
}

function node(id: string, now = 1000): NodeRecord {
  const r = new Registry();
  return r.applyRegistration({ node_id: id, capabilities: ['monitoring'], boot_id: 'b1', ts: now, labels: { site: 'a' } }, { now, live: true }).record;
}

function wpk(n: number): WpkRecord {
  return newWpk({ capability: 'monitoring', action: 'echo', params: { n } }, 1000 + n, DEFAULT_WPK);
}

export function storeContract(name: string, open: () => Promise<StoreFixture>): void {
  const test = suite<{ fx?: StoreFixture }>(`store contract: ${name}`, {});
  test.after.each(async (ctx) => { await ctx.fx?.close(); ctx.fx = undefined; });

  test('an empty store loads nothing', async (ctx) => {
    ctx.fx = await open();
    assert.equal(await ctx.fx.store.load(), { nodes: [], wpks: [] });
  });

  test('upserted and removed nodes are what a restarted hub loads', async (ctx) => {
    ctx.fx = await open();
    const { store } = ctx.fx;
    await store.load();
    const a = node('a'); const b = node('b'); const c = node('c');
    await store.writeNodes({ upserted: [a, b, c], removed: [], liveness: [] });
    const changedB = { ...b, status: 'offline' as const, status_reason: 'lost' };
    await store.writeNodes({ upserted: [changedB], removed: ['c'], liveness: [] });
    const again = await ctx.fx.reopen().load();
    const byId = new Map(again.nodes.map((r) => [r.node_id, r]));
    assert.equal([...byId.keys()].sort(), ['a', 'b']);
    assert.equal(byId.get('a'), a);
    assert.equal(byId.get('b'), changedB);
  });

  test('a liveness batch moves last_seen and load only', async (ctx) => {
    ctx.fx = await open();
    const { store } = ctx.fx;
    await store.load();
    const a = node('a');
    await store.writeNodes({ upserted: [a], removed: [], liveness: [] });
    await store.writeNodes({ upserted: [], removed: [], liveness: [{ node_id: 'a', last_seen: 5000, load: 0.25, running_wpks: 2 }, { node_id: 'unknown', last_seen: 1, load: null, running_wpks: null }] });
    const [got] = (await ctx.fx.reopen().load()).nodes;
    assert.equal(got, { ...a, last_seen: 5000, load: 0.25, running_wpks: 2 });
  });

  test('desired and reported state (NodeRecord.twin) persist with the record, through liveness batches', async (ctx) => {
    ctx.fx = await open();
    const { store } = ctx.fx;
    await store.load();
    const big = 'é'.repeat(3000); // near the 16 KB bound once JSON-encoded as UTF-8
    const twin = {
      version: 3, desired: { interval_s: 5, model: { name: 'v3', layers: [1, 2, { deep: null }] }, note: big }, desired_at: 4000,
      reported: { interval_s: 5, model: { name: 'v2' } }, reported_version: 2, reported_at: 4100, reported_error: 'model v3 not found',
    };
    const a = { ...node('a'), twin };
    await store.writeNodes({ upserted: [a], removed: [], liveness: [] });
    await store.writeNodes({ upserted: [], removed: [], liveness: [{ node_id: 'a', last_seen: 5000, load: 0.5, running_wpks: 0 }] });
    const [got] = (await ctx.fx.reopen().load()).nodes;
    assert.equal(got?.twin, twin);
    const cleared = { ...a, twin: { ...twin, version: 4, desired: {}, reported_error: null } };
    await store.writeNodes({ upserted: [cleared], removed: [], liveness: [] });
    assert.equal((await ctx.fx.reopen().load()).nodes[0]?.twin, cleared.twin);
  });

  test('work packages: upserts keep creation order, removals forget', async (ctx) => {
    ctx.fx = await open();
    const { store } = ctx.fx;
    await store.load();
    const [w1, w2, w3] = [wpk(1), wpk(2), wpk(3)];
    await store.writeWpks({ upserted: [w1!, w2!, w3!], removed: [] });
    const ended = { ...w1!, state: 'succeeded' as const, finished_at: 2000, updated_at: 2000 };
    await store.writeWpks({ upserted: [ended], removed: [w2!.wpk_id] });
    const again = await ctx.fx.reopen().load();
    assert.equal(again.wpks.map((w) => w.wpk_id), [w1!.wpk_id, w3!.wpk_id]);
    assert.equal(again.wpks[0], ended);
    assert.equal(again.nodes, [], 'work packages and nodes are apart');
  });

  test('a rollout in the middle comes back as it was: queued executions in order, its pace and criteria', async (ctx) => {
    ctx.fx = await open();
    const { store } = ctx.fx;
    await store.load();
    const w = newWpk({
      capability: 'monitoring', action: 'update', mode: 'all', continuous: true,
      rollout: { base_per_minute: 10, factor: 2, every_succeeded: 5, order_label: 'ring' }, abort: [{ on: 'any', min_executed: 10, threshold_pct: 5 }],
    }, 1000, DEFAULT_WPK);
    const run = (node_id: string, state: 'succeeded' | 'dispatched' | 'queued') => ({
      node_id, attempt: 1, state, boot_id: `b-${node_id}`, progress: null, result: null, error: null,
      dispatched_at: 1000, started_at: null, finished_at: state === 'succeeded' ? 1500 : null, updated_at: 1500,
    });
    w.executions.push(run('n1', 'succeeded'), run('n2', 'dispatched'), run('n3', 'queued'), run('n4', 'queued'));
    Object.assign(w, { state: 'running', attempt: 1, next_dispatch_at: 7000 });
    await store.writeWpks({ upserted: [w], removed: [] });
    w.executions[2]!.state = 'dispatched'; // the next slot: only this execution changed
    w.next_dispatch_at = 13_000;
    await store.writeWpks({ upserted: [w], removed: [] });
    const [back] = (await ctx.fx.reopen().load()).wpks;
    assert.equal(back, w);
  });

  test('an execution taken out of a WPK record is gone from the store too', async (ctx) => {
    ctx.fx = await open();
    const { store } = ctx.fx;
    await store.load();
    const w = wpk(7);
    const run = (node_id: string) => ({
      node_id, attempt: 1, state: 'succeeded' as const, boot_id: 'b', progress: 1, result: {}, error: null,
      dispatched_at: 1000, started_at: 1000, finished_at: 1100, updated_at: 1100,
    });
    w.executions.push(run('a'), run('b'), run('c'));
    await store.writeWpks({ upserted: [w], removed: [] });
    const kept = { ...w, executions: [w.executions[0]!, w.executions[2]!] };
    await store.writeWpks({ upserted: [kept], removed: [] });
    const [back] = (await ctx.fx.reopen().load()).wpks;
    assert.equal(back?.executions.map((e) => e.node_id), ['a', 'c']);
  });

  test.run();
}
