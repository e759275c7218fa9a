/**
 * Mode `one` of docs/protocol.md "Work packages", rule by rule, on the WPK
 * service with a fake clock (test/helpers/wpk-rig.ts): the states, moving on
 * (rejected, lost, no accept, timed out), max_attempts, `failed` ends it, the
 * first success wins, and the deadline. The options are the production
 * defaults (accept timeout 10 s, 2 s of grace, a sweep every 250 ms).
 */
import * as assert from 'uvu/assert';
import { defaultWpkOptions } from '../hub/wpk/service.js';
import { rigSuite, runs, type Rig } from './helpers/wpk-rig.js';

const test = rigSuite('wpk engine: mode one');
const SWEEP = defaultWpkOptions.sweepIntervalMs;
const ACCEPT = defaultWpkOptions.acceptTimeoutMs;
const GRACE = defaultWpkOptions.timeoutGraceMs;

/** Two capable nodes and a WPK: its first assignee and the other one. */
async function oneOfTwo(rig: Rig, req: Parameters<Rig['create']>[0] = {}) {
  rig.node('a');
  rig.node('b');
  const w = await rig.create(req);
  const first = w.assignee!;
  return { w, first, second: first === 'a' ? 'b' : 'a' };
}

test('states: pending -> dispatched (accepted counts) -> running -> succeeded, with the result; one trigger to the assignee', async ({ rig }) => {
  const latencies: number[] = [];
  const finished: string[] = [];
  rig.observers.dispatchAnswered.add((ms) => latencies.push(ms));
  rig.observers.wpkFinished.add((state) => finished.push(state));
  const waits = await rig.create({ capability: 'gpu' });
  assert.is(waits.state, 'pending', 'no node: pending');
  rig.node('a');
  rig.node('other', { capabilities: ['camera'] });
  const w = await rig.create({ action: 'collect', params: { window: '5m' } });
  assert.equal([w.state, w.assignee, w.attempt], ['dispatched', 'a', 1]);
  const [trig] = rig.triggers(w.wpk_id);
  assert.equal(rig.triggers(w.wpk_id).length, 1);
  assert.equal([trig!.attempt, trig!.action, trig!.params, trig!.assignee, trig!.mode], [1, 'collect', { window: '5m' }, 'a', 'one']);
  assert.is(rig.sent.find((s) => s.trigger?.wpk_id === w.wpk_id)!.topic, 'edgefed/v1/wpk/monitoring/trigger/a', "the node's own trigger topic");
  rig.advance(40);
  rig.send('a', w.wpk_id, 1, 'accepted');
  assert.is(rig.get(w.wpk_id).state, 'dispatched', 'accepted counts as dispatched');
  assert.equal(latencies, [40], 'dispatch latency: trigger to first answer');
  rig.send('a', w.wpk_id, 1, 'running', { progress: 0.5 });
  assert.is(rig.get(w.wpk_id).state, 'running');
  rig.send('a', w.wpk_id, 1, 'succeeded', { result: { cpu: 0.3 } });
  const done = rig.get(w.wpk_id);
  assert.equal([done.state, done.result, done.error, done.finished_at], ['succeeded', { cpu: 0.3 }, null, rig.clock.now()]);
  assert.equal(done.executions.map((e) => [e.node_id, e.attempt, e.state, e.progress]), [['a', 1, 'succeeded', 1]]);
  assert.ok(done.executions[0]!.started_at !== null && done.executions[0]!.finished_at !== null);
  assert.equal(done.summary, { succeeded: 1 });
  assert.equal(finished, ['succeeded']);
  assert.equal([rig.counters.wpks.created, rig.counters.wpks.triggers, rig.counters.wpks.finished.succeeded], [2, 1, 1]);
  assert.is(rig.service.inFlightOn('a'), 0, 'the slot is free again');
});

test('moving on: a rejection sends the WPK to another node with attempt + 1', async ({ rig }) => {
  const { w, first, second } = await oneOfTwo(rig);
  rig.send(first, w.wpk_id, 1, 'rejected', { error: 'unknown action "x"' });
  const [, again] = rig.triggers(w.wpk_id);
  assert.equal([again!.assignee, again!.attempt], [second, 2]);
  assert.equal([rig.get(w.wpk_id).assignee, rig.get(w.wpk_id).state], [second, 'dispatched']);
  rig.complete(second, w.wpk_id, 2);
  assert.equal(runs(rig.get(w.wpk_id)), [[first, 1, 'rejected'], [second, 2, 'succeeded']]);
  assert.is(rig.counters.wpks.redispatches, 1);
});

test('moving on: the assignee is lost (will, shutdown, missed heartbeats, new boot_id, deregistered); it is told to cancel', async (ctx) => {
  const cases: Array<[string, (rig: Rig, id: string) => void, RegExp]> = [
    ['will', (rig, id) => rig.offline(id, 'lost'), /^node went offline \(lost\)$/],
    ['shutdown', (rig, id) => rig.offline(id, 'shutdown'), /^node went offline \(shutdown\)$/],
    ['heartbeats missed', (rig, id) => rig.silent(id), /^node stopped sending heartbeats$/],
    ['restart', (rig, id) => void rig.node(id, { bootId: 'second-boot' }), /^node restarted \(new boot_id\)$/],
    ['deregistered', (rig, id) => rig.deregister(id), /^node left the federation$/],
  ];
  for (const [label, lose, reason] of cases) {
    const rig = ctx.use({});
    const { w, first, second } = await oneOfTwo(rig);
    rig.send(first, w.wpk_id, 1, 'accepted');
    rig.send(first, w.wpk_id, 1, 'running');
    lose(rig, first);
    const lost = rig.get(w.wpk_id).executions[0]!;
    assert.equal([lost.state, lost.finished_at], ['lost', rig.clock.now()], label);
    assert.match(lost.error ?? '', reason, label);
    assert.equal(rig.cancels(w.wpk_id).map((c) => [c.node_id, c.attempt]), [[first, 1]], `${label}: the lost node is told to stop`);
    assert.equal(rig.triggers(w.wpk_id).map((t) => [t.assignee, t.attempt]), [[first, 1], [second, 2]], `${label}: at once, no sweep needed`);
  }
});

test('moving on: no accept within the accept timeout (10 s) loses the attempt; max_attempts ends it failed with the reason', async ({ rig }) => {
  const { w, first, second } = await oneOfTwo(rig, { max_attempts: 2 });
  rig.advance(ACCEPT);
  assert.is(rig.get(w.wpk_id).executions[0]!.state, 'dispatched', 'exactly the accept timeout is still in time');
  rig.advance(SWEEP);
  assert.equal(runs(rig.get(w.wpk_id)), [[first, 1, 'lost'], [second, 2, 'dispatched']], 'the retry goes to the other node');
  assert.is(rig.get(w.wpk_id).executions[0]!.error, 'did not accept within 10000 ms');
  rig.advance(ACCEPT + SWEEP);
  const done = rig.get(w.wpk_id);
  assert.equal([done.state, done.attempt], ['failed', 2]);
  assert.match(done.error ?? '', /^gave up after 2 attempt\(s\); attempt 2 on .+ lost: did not accept within 10000 ms$/);
  assert.equal(rig.triggers(w.wpk_id).length, 2, 'no third attempt');
});

test('moving on: an attempt past timeout_ms + 2 s of grace is timed out and canceled; the last one ends the WPK timed_out', async ({ rig }) => {
  rig.node('a');
  const w = await rig.create({ timeout_ms: 1000, max_attempts: 1 });
  rig.send('a', w.wpk_id, 1, 'accepted');
  rig.advance(500);
  rig.send('a', w.wpk_id, 1, 'running');
  rig.advance(1000 + GRACE - 1);
  assert.is(rig.get(w.wpk_id).state, 'running', 'the grace counts from running');
  rig.advance(SWEEP + 1);
  const done = rig.get(w.wpk_id);
  assert.equal([done.state, done.executions[0]!.state, done.executions[0]!.error], ['timed_out', 'timed_out', 'exceeded its timeout of 1000 ms']);
  assert.match(done.error ?? '', /^gave up after 1 attempt\(s\); attempt 1 on a timed_out/);
  assert.equal(rig.cancels(w.wpk_id).map((c) => [c.node_id, c.attempt]), [['a', 1]]);
});

test('moving on: a timed-out attempt with attempts left goes to another node; the WPK ends failed when a lost attempt is the last', async ({ rig }) => {
  const { w, first, second } = await oneOfTwo(rig, { timeout_ms: 1000, max_attempts: 2 });
  rig.send(first, w.wpk_id, 1, 'accepted');
  rig.advance(1000 + GRACE + SWEEP);
  assert.equal(runs(rig.get(w.wpk_id)), [[first, 1, 'timed_out'], [second, 2, 'dispatched']], 'accepted but never running: timed from dispatch');
  rig.offline(second);
  const done = rig.get(w.wpk_id);
  assert.is(done.state, 'failed', 'the last attempt was lost, not timed out');
  assert.match(done.error ?? '', /gave up after 2 attempt\(s\); attempt 2 on .+ lost: node went offline/);
});

test('`failed` ends it: an action that ran and failed is not run elsewhere, attempts and nodes left or not', async ({ rig }) => {
  const { w, first } = await oneOfTwo(rig, { max_attempts: 3 });
  rig.complete(first, w.wpk_id, 1, 'failed', { error: 'disk full' });
  const done = rig.get(w.wpk_id);
  assert.equal([done.state, done.error, done.attempt], ['failed', `attempt 1 on ${first} failed: disk full`, 1]);
  assert.is(rig.triggers(w.wpk_id).length, 1);
  rig.advance(ACCEPT * 2);
  assert.is(rig.triggers(w.wpk_id).length, 1, 'nor later');
});

test('the first success wins, even from an attempt the hub gave up on; the attempt in flight is told to cancel', async ({ rig }) => {
  const { w, first, second } = await oneOfTwo(rig);
  rig.send(first, w.wpk_id, 1, 'accepted');
  rig.send(first, w.wpk_id, 1, 'running');
  rig.offline(first);
  assert.equal(runs(rig.get(w.wpk_id)), [[first, 1, 'lost'], [second, 2, 'dispatched']]);
  rig.send(second, w.wpk_id, 2, 'accepted');
  rig.online(first); // it was only cut off, and kept running
  rig.send(first, w.wpk_id, 1, 'succeeded', { result: { from: 'first' } });
  const done = rig.get(w.wpk_id);
  assert.equal([done.state, done.result], ['succeeded', { from: 'first' }]);
  assert.equal(runs(done), [[first, 1, 'succeeded'], [second, 2, 'canceled']]);
  assert.is(done.executions[1]!.error, 'the WPK succeeded elsewhere');
  assert.equal(rig.cancels(w.wpk_id).map((c) => [c.node_id, c.attempt]), [[first, 1], [second, 2]]);
  assert.equal([rig.service.inFlightOn('a'), rig.service.inFlightOn('b')], [0, 0], 'every slot released');
});

test('no node free: pending until the deadline, then expired; the deadline is absolute and checked by the sweep', async ({ rig }) => {
  const w = await rig.create({ capability: 'lidar', deadline: rig.clock.now() + 5000 });
  rig.advance(4999);
  assert.is(rig.get(w.wpk_id).state, 'pending');
  rig.advance(SWEEP);
  const done = rig.get(w.wpk_id);
  assert.equal([done.state, done.error, done.attempt], ['expired', 'no capable node could take it before the deadline', 0]);
  rig.node('late', { capabilities: ['lidar'] });
  assert.equal(rig.triggers(w.wpk_id), [], 'a node that comes after the deadline gets nothing');
});

test('the deadline stops new attempts only: one in flight runs on; after it the WPK expires with what happened', async ({ rig }) => {
  rig.node('a');
  const w = await rig.create({ deadline: rig.clock.now() + 1000, timeout_ms: 60_000 });
  rig.send('a', w.wpk_id, 1, 'accepted');
  rig.send('a', w.wpk_id, 1, 'running');
  rig.advance(5000);
  assert.is(rig.get(w.wpk_id).state, 'running', 'past the deadline, still running');
  const other = await rig.create({ deadline: rig.clock.now() + 60_000, timeout_ms: 600_000 });
  rig.send('a', w.wpk_id, 1, 'succeeded', { result: { ok: true } });
  assert.is(rig.get(w.wpk_id).state, 'succeeded', 'a success after the deadline counts');
  // The freed slot goes to the other WPK; when it is rejected past its deadline, it expires.
  assert.is(rig.get(other.wpk_id).assignee, 'a');
  rig.send('a', other.wpk_id, 1, 'accepted');
  rig.advance(60_000);
  rig.node('b');
  rig.send('a', other.wpk_id, 1, 'rejected', { error: 'nope' });
  const expired = rig.get(other.wpk_id);
  assert.is(expired.state, 'expired');
  assert.is(expired.error, 'deadline passed before a new attempt; attempt 1 on a rejected: nope');
});


test("moving on: the timeout is measured on the hub's clock, whatever the node's clock says", async ({ use }) => {
  const rig = use({ startedAt: 0 }); // a hub up for long: nothing counts from its start
  for (const [id, skew] of [['behind', -3_600_000], ['ahead', 3_600_000]] as const) {
    rig.node(id, { capabilities: [id] });
    const w = await rig.create({ capability: id, timeout_ms: 1000, max_attempts: 1 });
    rig.send(id, w.wpk_id, 1, 'running', { ts: rig.clock.now() + skew });
    const e = w.executions[0]!;
    assert.ok(e.started_at! >= e.dispatched_at && e.started_at! <= rig.clock.now(), `${id}: started_at within dispatch and now`);
    rig.advance(1000 + GRACE);
    assert.is(w.state, 'running', `${id}: not before timeout_ms + grace`);
    rig.advance(SWEEP);
    assert.is(w.state, 'timed_out', `${id}: not long after either`);
  }
});

test.run();
