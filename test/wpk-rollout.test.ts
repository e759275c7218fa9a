/**
 * Staged rollouts (docs/protocol.md, "Rollouts"), rule by rule, on the WPK
 * service with a fake clock: targets queued in their documented order, a
 * rate spread evenly (not a burst, even after an idle spell), an exponential
 * ramp, abort criteria, cancel and deadline, and a hub restart in the middle
 * that neither repeats nor skips a node.
 */
import * as assert from 'uvu/assert';
import { wpkMemoryAdapter } from '../hub/wpk/store.js';
import { ratePerMinute } from '../hub/wpk/rollout.js';
import type { WpkRecord } from '../hub/wpk/types.js';
import { restartedRig, rigSuite, runs, type Rig } from './helpers/wpk-rig.js';

const test = rigSuite('wpk engine: rollouts');
const SWEEP = 250;

/** The nodes each trigger of `w` went to, in order, with the time since `t0` it went out. */
function dispatchTimes(rig: Rig, w: WpkRecord, t0: number): Array<[string, number]> {
  return w.executions.filter((e) => e.state !== 'queued' && e.state !== 'skipped').map((e) => [e.node_id, e.dispatched_at - t0]);
}

const states = (w: WpkRecord) => runs(w).map(([n, , s]) => `${n}:${s}`);

test('a fixed rate: one dispatch about every 60000/N ms, the others queued in node id order', async ({ rig }) => {
  for (const id of ['n10', 'n2', 'n1', 'n3']) rig.node(id);
  const t0 = rig.clock.now();
  const w = await rig.create({ mode: 'all', rollout: { max_per_minute: 60 } });
  assert.equal(states(w), ['n1:dispatched', 'n2:queued', 'n3:queued', 'n10:queued'], 'numeric-aware id order; the first goes at once');
  assert.equal([w.state, w.summary], ['dispatched', {}]);
  assert.is(ratePerMinute(w), 60);
  rig.advance(900);
  assert.is(rig.triggers(w.wpk_id).length, 1, 'not before a second has passed');
  rig.advance(SWEEP);
  assert.is(rig.triggers(w.wpk_id).length, 2);
  rig.advance(2000);
  assert.equal(dispatchTimes(rig, w, t0), [['n1', 0], ['n2', 1000], ['n3', 2000], ['n10', 3000]], 'each on its slot');
  assert.equal(rig.triggers(w.wpk_id).map((t) => t.targets), [['n1'], ['n2'], ['n3'], ['n10']], 'one trigger per dispatch: never a burst');
});

test('a rate between sweeps is kept to the millisecond: 150/min is every 400 ms, not at the next 250 ms sweep', async ({ rig }) => {
  for (const id of ['a', 'b', 'c', 'd']) rig.node(id);
  rig.advance(130); // creation off the sweep's phase
  const t0 = rig.clock.now();
  const w = await rig.create({ mode: 'all', rollout: { max_per_minute: 150 } });
  rig.advance(1300);
  assert.equal(dispatchTimes(rig, w, t0), [['a', 0], ['b', 400], ['c', 800], ['d', 1200]]);
});

test('a rollout slot writes that rollout, not every open WPK (a large rollout is a large record)', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  const other = await rig.create({ capability: 'camera' }); // open, waiting for a camera
  const w = await rig.create({ mode: 'all', rollout: { max_per_minute: 60 } });
  rig.batches.length = 0;
  rig.advance(2100);
  await rig.service.flush();
  assert.is(rig.triggers(w.wpk_id).length, 3);
  const written = new Set(rig.batches.flat());
  assert.ok(written.has(w.wpk_id));
  assert.not.ok(written.has(other.wpk_id), `only the rollout: ${JSON.stringify(rig.batches)}`);
});

test('order_label: by that label value, nodes without it last, then by node id', async ({ rig }) => {
  rig.node('a', { labels: { ring: '2' } });
  rig.node('b');
  rig.node('c', { labels: { ring: '1' } });
  rig.node('d', { labels: { ring: '1' } });
  rig.node('e', { labels: { ring: '10' } });
  const w = await rig.create({ mode: 'all', rollout: { max_per_minute: 600, order_label: 'ring' } });
  rig.advance(1000);
  assert.equal(runs(w).map((r) => r[0]), ['c', 'd', 'a', 'e', 'b']);
});

test('a ramp grows by its factor each time every_succeeded more succeed, capped by max_per_minute', async ({ rig }) => {
  for (let i = 1; i <= 8; i++) rig.node(`n${i}`);
  const w = await rig.create({ mode: 'all', rollout: { base_per_minute: 30, factor: 2, every_succeeded: 2, max_per_minute: 100 } });
  assert.is(ratePerMinute(w), 30);
  rig.advance(2000);
  assert.is(rig.triggers(w.wpk_id).length, 2, 'one every 2 s at 30/min');
  rig.complete('n1', w.wpk_id, 1);
  rig.complete('n2', w.wpk_id, 1);
  assert.is(ratePerMinute(w), 60, 'two succeeded: doubled');
  const before = rig.triggers(w.wpk_id).length;
  rig.advance(3000);
  assert.is(rig.triggers(w.wpk_id).length - before, 2, 'the slot already taken at 4 s, then one a second: 5 s');
  for (const id of ['n3', 'n4']) rig.complete(id, w.wpk_id, 1);
  assert.is(ratePerMinute(w), 100, '120 capped at 100');
});

test('an idle spell does not save slots up: nodes free again after 10 s get one dispatch a second, not a burst', async ({ rig }) => {
  for (const id of ['a', 'b', 'c', 'd']) rig.node(id);
  for (const id of ['b', 'c', 'd']) rig.silent(id);
  const w = await rig.create({ mode: 'all', rollout: { max_per_minute: 60 } });
  assert.equal(states(w), ['a:dispatched', 'b:queued', 'c:queued', 'd:queued'], 'stale nodes are targets: queued');
  rig.advance(10_000);
  assert.is(rig.triggers(w.wpk_id).length, 1, 'nobody free to take it');
  for (const id of ['b', 'c', 'd']) rig.online(id);
  rig.advance(SWEEP);
  assert.is(rig.triggers(w.wpk_id).length, 2, 'one slot is due, not ten');
  rig.advance(1000);
  assert.is(rig.triggers(w.wpk_id).length, 3);
});

test('a busy or away target keeps its place; the next free one goes instead', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  rig.offline('b', 'shutdown');
  const w = await rig.create({ mode: 'all', include_offline: true, rollout: { max_per_minute: 60 } });
  rig.advance(1000);
  assert.equal(states(w), ['a:dispatched', 'b:queued', 'c:dispatched']);
  rig.online('b');
  rig.advance(1000);
  assert.equal(states(w), ['a:dispatched', 'b:dispatched', 'c:dispatched']);
});

test('abort: when the criterion is met, queued targets are skipped, running ones canceled, and the record says why', async ({ rig }) => {
  for (let i = 0; i < 10; i++) rig.node(`n${i}`);
  const w = await rig.create({ mode: 'all', timeout_ms: 600_000, rollout: { max_per_minute: 60 }, abort: [{ on: 'failed', min_executed: 5, threshold_pct: 20 }] });
  rig.advance(5000); // n0..n5 dispatched
  rig.complete('n0', w.wpk_id, 1);
  rig.complete('n1', w.wpk_id, 1, 'failed', { error: 'boom' });
  assert.is(w.state, 'running', '1 of 2 failed, but fewer than 5 ended');
  for (const id of ['n2', 'n3']) rig.complete(id, w.wpk_id, 1);
  rig.send('n5', w.wpk_id, 1, 'running');
  rig.complete('n4', w.wpk_id, 1);
  assert.is(w.state, 'aborted', '1 of 5 failed: 20 %');
  assert.equal(w.aborted_by, { on: 'failed', min_executed: 5, threshold_pct: 20, executed: 5, matched: 1 });
  assert.match(w.error ?? '', /aborted: 1 of 5 executions ended failed \(20 %\)/);
  assert.equal(states(w).slice(5), ['n5:canceled', 'n6:skipped', 'n7:skipped', 'n8:skipped', 'n9:skipped']);
  assert.match(w.executions[6]!.error ?? '', /aborted before it reached this node/);
  assert.equal(rig.cancels(w.wpk_id).map((c) => c.node_id), ['n5'], 'the running one is told to stop');
  assert.equal(w.summary, { succeeded: 4, failed: 1, canceled: 1, skipped: 4 });
  const sent = rig.triggers(w.wpk_id).length;
  rig.advance(10_000);
  assert.is(rig.triggers(w.wpk_id).length, sent, 'nothing more goes out');
  assert.is(rig.counters.wpks.finished.aborted, 1);
});

test('abort on any: rejections, timeouts and lost nodes count; the first criterion met is the one recorded', async ({ rig }) => {
  for (const id of ['a', 'b', 'c', 'd']) rig.node(id);
  const w = await rig.create({
    mode: 'all', rollout: { max_per_minute: 6000 },
    abort: [{ on: 'failed', min_executed: 1, threshold_pct: 50 }, { on: 'any', min_executed: 2, threshold_pct: 100 }],
  });
  rig.advance(SWEEP);
  rig.send('a', w.wpk_id, 1, 'rejected', { error: 'unknown action' });
  rig.offline('b');
  assert.equal([w.state, w.aborted_by?.on, w.aborted_by?.matched], ['aborted', 'any', 2]);
});

test('a busy refusal says nothing about the work: it does not count for the abort criteria', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  const w = await rig.create({ mode: 'all', rollout: { max_per_minute: 6000 }, abort: [{ on: 'any', min_executed: 1, threshold_pct: 50 }] });
  rig.advance(SWEEP);
  rig.send('a', w.wpk_id, 1, 'rejected', { error: 'busy: 4 of 4 slots in use' });
  rig.complete('b', w.wpk_id, 1);
  assert.is(w.state, 'running', 'one executed (b), none failed: a was only busy');
  rig.complete('c', w.wpk_id, 1, 'failed', { error: 'boom' });
  assert.equal([w.state, w.aborted_by?.executed, w.aborted_by?.matched], ['aborted', 2, 1]);
});

test('cancel skips the queued targets with a reason; the deadline leaves the unreached ones skipped and fails it', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  const w = await rig.create({ mode: 'all', rollout: { max_per_minute: 1 } });
  await rig.service.cancel(w.wpk_id);
  assert.equal(states(w), ['a:canceled', 'b:skipped', 'c:skipped']);
  assert.match(w.executions[1]!.error ?? '', /canceled before the rollout reached this node/);
  const late = await rig.create({ mode: 'all', rollout: { max_per_minute: 1 }, deadline: rig.clock.now() + 30_000 });
  rig.complete('a', late.wpk_id, 1);
  rig.advance(30_000);
  assert.equal([late.state, states(late)], ['failed', ['a:succeeded', 'b:skipped', 'c:skipped']]);
  assert.is(late.error, '1 of 1 node(s) succeeded; 2 node(s) were not reached before the deadline');
  assert.match(late.executions[2]!.error ?? '', /did not reach this node before the work package ended failed/);
});

test('a queued node that leaves the federation is skipped; the rollout ends with the others', async ({ rig }) => {
  for (const id of ['a', 'b']) rig.node(id);
  const w = await rig.create({ mode: 'all', rollout: { max_per_minute: 60 } });
  rig.complete('a', w.wpk_id, 1);
  rig.deregister('b');
  rig.advance(SWEEP);
  assert.equal([w.state, states(w)], ['succeeded', ['a:succeeded', 'b:skipped']]);
});

test('a hub restart mid-rollout: no node is dispatched twice or skipped, and the pace goes on (no burst)', async (ctx) => {
  const adapter = wpkMemoryAdapter();
  const before = ctx.use({ adapter });
  for (let i = 1; i <= 6; i++) before.node(`n${i}`);
  const w0 = await before.create({ mode: 'all', timeout_ms: 600_000, rollout: { max_per_minute: 60 } });
  before.advance(2000); // n1..n3 dispatched
  before.complete('n1', w0.wpk_id, 1);
  const after = await restartedRig(ctx, before, adapter, 30_000);
  for (let i = 1; i <= 6; i++) after.node(`n${i}`); // the fleet re-announces, same boots
  const w = after.get(w0.wpk_id);
  after.advance(SWEEP);
  assert.equal(states(w), ['n1:succeeded', 'n2:dispatched', 'n3:dispatched', 'n4:dispatched', 'n5:queued', 'n6:queued'], 'one slot after 30 s down, not thirty');
  after.advance(2000);
  for (const id of ['n2', 'n3', 'n4', 'n5', 'n6']) after.complete(id, w.wpk_id, 1);
  assert.is(w.state, 'succeeded');
  const triggered = [...before.triggers(w.wpk_id), ...after.triggers(w.wpk_id)].flatMap((t) => t.targets ?? []);
  assert.equal(triggered, ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'], 'each node exactly once across both hubs');
});

test('requests: rollout, abort and continuous need mode all; a ramp needs its three fields', async ({ rig }) => {
  const refused = async (req: Parameters<Rig['create']>[0], code: string, message: RegExp) => {
    const err = await rig.create(req).then(() => undefined, (e: unknown) => e as { status: number; code: string; message: string });
    assert.ok(err, `refused: ${JSON.stringify(req)}`);
    assert.equal([err.status, err.code], [422, code]);
    assert.match(err.message, message);
  };
  await refused({ rollout: { max_per_minute: 5 } }, 'EDGEFED_ERR_WPK_MODE', /rollout apply to mode "all"/);
  await refused({ continuous: true, abort: [{ on: 'failed', min_executed: 1, threshold_pct: 10 }] }, 'EDGEFED_ERR_WPK_MODE', /continuous, abort apply to mode "all"/);
  await refused({ mode: 'all', rollout: { base_per_minute: 5, factor: 2 } }, 'EDGEFED_ERR_WPK_ROLLOUT', /base_per_minute, factor and every_succeeded together/);
  await refused({ mode: 'all', rollout: {} }, 'EDGEFED_ERR_WPK_ROLLOUT', /give max_per_minute/);
  await refused({ mode: 'all', rollout: { max_per_minute: 0 } }, 'EDGEFED_ERR_SCHEMA', /max_per_minute/);
  await refused({ mode: 'all', abort: [{ on: 'lost', min_executed: 1, threshold_pct: 10 }] as never }, 'EDGEFED_ERR_SCHEMA', /on/);
  assert.is(rig.service.list().length, 0, 'nothing was recorded');
});

test.run();
