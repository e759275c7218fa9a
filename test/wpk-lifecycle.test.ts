/**
 * What happens around a WPK's rules, per docs/protocol.md, on the WPK
 * service with a fake clock: cancel, repeated and reordered updates, late
 * results, retention of finished WPKs, request defaults and limits, and a
 * hub restart (restored work, its timers, nodes not heard from again).
 */
import * as assert from 'uvu/assert';
import { defaultWpkOptions } from '../hub/wpk/service.js';
import { wpkMemoryAdapter } from '../hub/wpk/store.js';
import type { WpkRequestError } from '../hub/wpk/types.js';
import { FakeClock } from './helpers/clock.js';
import { restartedRig, rigSuite, runs, type Rig, type RigCtx } from './helpers/wpk-rig.js';

const test = rigSuite('wpk lifecycle');
const SWEEP = defaultWpkOptions.sweepIntervalMs;
const ACCEPT = defaultWpkOptions.acceptTimeoutMs;
const DAY = 24 * 3600 * 1000;

async function refusal(p: Promise<unknown>): Promise<Pick<WpkRequestError, 'status' | 'code' | 'message'>> {
  try {
    await p;
  } catch (err) {
    const { status, code, message } = err as WpkRequestError;
    return { status, code, message };
  }
  throw new Error('expected a refusal');
}

test('cancel: canceled at once, every node running it told to stop; a late result is recorded but changes nothing', async ({ rig }) => {
  rig.node('a');
  rig.node('b');
  const w = await rig.create({ mode: 'all' });
  rig.complete('a', w.wpk_id, 1);
  rig.send('b', w.wpk_id, 1, 'running');
  const canceled = await rig.service.cancel(w.wpk_id);
  assert.equal([canceled.state, canceled.error, canceled.finished_at], ['canceled', 'canceled by an operator', rig.clock.now()]);
  assert.equal(rig.cancels(w.wpk_id).map((c) => [c.node_id, c.attempt]), [['b', 1]], 'only the node still running it');
  assert.equal(runs(w), [['a', 1, 'succeeded'], ['b', 1, 'canceled']]);
  assert.is(rig.service.inFlightOn('b'), 0);
  rig.send('b', w.wpk_id, 1, 'succeeded', { result: { late: true } });
  assert.equal([w.executions[1]!.state, w.executions[1]!.result], ['succeeded', { late: true }], 'recorded');
  assert.equal([w.state, w.result, w.summary], ['canceled', null, { succeeded: 2 }]);
});

test('cancel: a pending WPK too; 409 for a finished one, naming its state; 404 for an unknown one', async ({ rig }) => {
  const pending = await rig.create({ capability: 'gpu' });
  assert.is((await rig.service.cancel(pending.wpk_id)).state, 'canceled');
  const again = await refusal(rig.service.cancel(pending.wpk_id));
  assert.equal([again.status, again.code], [409, 'EDGEFED_ERR_WPK_FINISHED']);
  assert.match(again.message, /already ended canceled/);
  rig.node('a');
  const done = await rig.create({});
  rig.complete('a', done.wpk_id, 1);
  assert.match((await refusal(rig.service.cancel(done.wpk_id))).message, /already ended succeeded/);
  assert.equal((await refusal(rig.service.cancel('wpk_nope'))).status, 404);
  assert.is(rig.get(done.wpk_id).state, 'succeeded');
});

test('updates only go forward: duplicates and reordered copies are counted as ignored.stale_update; running may repeat with progress', async ({ rig }) => {
  rig.node('a');
  const w = await rig.create({});
  rig.send('a', w.wpk_id, 1, 'running', { progress: 0.2 });
  rig.send('a', w.wpk_id, 1, 'accepted'); // reordered: older than running
  rig.send('a', w.wpk_id, 1, 'running', { progress: 0.6 });
  assert.equal([w.executions[0]!.state, w.executions[0]!.progress, rig.counters.ignored.stale_update], ['running', 0.6, 1]);
  rig.send('a', w.wpk_id, 1, 'failed', { error: 'boom' });
  rig.send('a', w.wpk_id, 1, 'failed', { error: 'boom' }); // a replayed final the hub has
  rig.send('a', w.wpk_id, 1, 'running');
  rig.send('a', w.wpk_id, 1, 'succeeded', { result: {} });
  assert.is(rig.counters.ignored.stale_update, 4);
  assert.equal([w.state, w.executions[0]!.state, w.executions[0]!.error, w.result], ['failed', 'failed', 'boom', null]);
  rig.send('a', w.wpk_id, 7, 'succeeded');
  rig.send('a', 'wpk_unknown', 1, 'succeeded');
  rig.send('b', w.wpk_id, 1, 'succeeded');
  assert.is(rig.counters.ignored.unknown_execution, 3, 'another attempt, WPK or node: not dispatched by the hub');
});

test('a replayed final the hub lacks is applied: after a restart that lost the last writes, the WPK ends as the node reported', async ({ rig: first, use }) => {
  const adapter = wpkMemoryAdapter();
  const before = use({ adapter, clock: first.clock });
  before.node('a');
  const w = await before.create({});
  await before.stop(); // on disk: dispatched, nothing more
  const clock = new FakeClock(before.clock.now() + 20_000);
  const after = use({ adapter, clock, start: false });
  after.registry.restore([...before.registry.all()]);
  await after.load();
  after.service.start();
  after.node('a'); // the same boot re-announces
  after.send('a', w.wpk_id, 1, 'succeeded', { result: { n: 1 } });
  const done = after.get(w.wpk_id);
  assert.equal([done.state, done.result, runs(done)], ['succeeded', { n: 1 }, [['a', 1, 'succeeded']]]);
  assert.is(after.counters.ignored.stale_update, 0);
  after.send('a', w.wpk_id, 1, 'succeeded', { result: { n: 1 } });
  assert.is(after.counters.ignored.stale_update, 1, 'the same final again is only counted');
});

/** A hub that ran `w` on node a, stopped, and came back `later` ms after; its registry restored from the first. */
async function restarted(ctx: RigCtx, later: number, state: 'dispatched' | 'running') {
  const adapter = wpkMemoryAdapter();
  const before = ctx.use({ adapter });
  before.node('a');
  before.node('b');
  const w = await before.create({ timeout_ms: 60_000 });
  if (state === 'running') before.send(w.assignee!, w.wpk_id, 1, 'running');
  const after = await restartedRig(ctx, before, adapter, later);
  return { w: after.get(w.wpk_id), first: w.assignee!, after };
}

test('restart: restored work keeps its slot and gets its full time again from the hub start', async (ctx) => {
  const { w, first, after } = await restarted(ctx, 1_800_000, 'dispatched');
  assert.equal([w.state, after.service.inFlightOn(first)], ['dispatched', 1]);
  after.node(first); // it re-announces, same boot
  after.advance(ACCEPT);
  assert.is(w.executions[0]!.state, 'dispatched', 'half an hour old, yet not lost before the accept timeout counted from the restart');
  after.advance(SWEEP);
  assert.equal(runs(w).map((r) => r[2]), ['lost'], 'it let the trigger time out: no new attempt for it until it shows life');
  after.online(first);
  assert.equal(runs(w).map((r) => r[2]), ['lost', 'dispatched']);
  // The replay of `running` with `ts` its start (docs/protocol.md) keeps an attempt alive instead.
  const again = await restarted(ctx, 1_800_000, 'dispatched');
  again.after.node(again.first);
  again.after.send(again.first, again.w.wpk_id, 1, 'running', { ts: again.w.created_at + 10 });
  again.after.advance(ACCEPT + SWEEP);
  assert.equal([again.w.state, again.w.executions[0]!.started_at], ['running', again.w.created_at + 10]);
});

test('restart: a node not heard from within 60 s of the hub start loses its work; one that is heard from keeps it', async (ctx) => {
  const { w, first, after } = await restarted(ctx, 5000, 'running');
  assert.is(after.registry.get(first)!.status, 'stale', 'the hub claims no liveness it has not seen');
  after.advance(defaultWpkOptions.lostAfterRestartMs);
  assert.is(w.state, 'running');
  after.advance(SWEEP);
  assert.equal([w.state, runs(w).map((r) => r[2])], ['pending', ['lost']], 'no node heard from yet: it waits');
  assert.is(w.executions[0]!.error, 'node not heard from since the hub restarted');
  const kept = await restarted(ctx, 5000, 'running');
  kept.after.online(kept.first);
  kept.after.advance(defaultWpkOptions.lostAfterRestartMs + 2 * SWEEP);
  assert.equal([kept.w.state, kept.w.executions.length], ['running', 1]);
});

test('retention: finished WPKs are kept 7 days, then forgotten; open ones never', async ({ use }) => {
  const HOUR = 3_600_000;
  const rig = use({ wpk: { sweepIntervalMs: HOUR } }); // 7 days of 250 ms sweeps is 2.4 million ticks
  rig.node('a');
  const done = await rig.create({});
  rig.complete('a', done.wpk_id, 1);
  const open = await rig.create({ capability: 'gpu', deadline: rig.clock.now() + 30 * DAY });
  rig.advance(7 * DAY);
  assert.ok(rig.service.get(done.wpk_id), 'exactly 7 days: kept');
  rig.advance(HOUR);
  assert.is(rig.service.get(done.wpk_id), undefined);
  assert.is(rig.service.get(open.wpk_id)?.state, 'pending');
});

test('retention: at most maxFinished finished WPKs (10,000 by default), the oldest forgotten first', async ({ use }) => {
  assert.is(defaultWpkOptions.maxFinished, 10_000);
  const rig = use({ wpk: { maxFinished: 2 } });
  rig.node('a', { maxConcurrency: 10 });
  const open = await rig.create({ capability: 'gpu' });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const w = await rig.create({});
    rig.complete('a', w.wpk_id, 1);
    ids.push(w.wpk_id);
  }
  rig.advance(SWEEP);
  assert.equal(rig.service.list().map((w) => w.wpk_id), [ids[3], ids[2], open.wpk_id]);
});

test('defaults: deadline one hour after creation, timeout 10 minutes, 3 attempts, mode one, no params', async ({ rig }) => {
  const w = await rig.create({});
  assert.equal(
    [w.deadline - w.created_at, w.timeout_ms, w.max_attempts, w.mode, w.params, w.nodes, w.labels, w.created_at],
    [3_600_000, 600_000, 3, 'one', {}, null, null, rig.clock.now()],
  );
});

test('limits: a deadline not in the future and a request the schema refuses are 422 and create nothing; create resolves once on disk', async ({ use }) => {
  const adapter = wpkMemoryAdapter();
  const rig = use({ adapter });
  const past = await refusal(rig.create({ deadline: rig.clock.now() }));
  assert.equal([past.status, past.code], [422, 'EDGEFED_ERR_WPK_DEADLINE']);
  for (const bad of [{ capability: 'a/b' }, { action: '' }, { timeout_ms: 0 }, { max_attempts: 0 }, { nodes: [] }, { colour: 'red' }]) {
    const r = await refusal(rig.create(bad as never));
    assert.equal([r.status, r.code], [422, 'EDGEFED_ERR_SCHEMA'], JSON.stringify(bad));
  }
  assert.equal([rig.service.list(), rig.counters.wpks.created], [[], 0]);
  const w = await rig.create({});
  assert.equal((await adapter.read())?.wpks.map((x) => x.wpk_id), [w.wpk_id], 'in the store when create() resolves');
});

test('a trigger seen on the broker that the hub did not publish is refused and counted; its own echo is not', async ({ rig }) => {
  rig.node('a');
  await rig.create({});
  const own = rig.sent.find((s) => s.trigger)!.topic;
  rig.service.onTriggerSeen(own);
  assert.is(rig.counters.refusals.not_allowed ?? 0, 0);
  rig.service.onTriggerSeen(own); // a second copy: not the hub's
  rig.service.onTriggerSeen('edgefed/v1/wpk/monitoring/trigger');
  assert.is(rig.counters.refusals.not_allowed, 2);
});

test.run();
