/**
 * Mode `one`, rule 1 "Choice" and rule 2 "No node free" of docs/protocol.md,
 * on the WPK service with a fake clock: which nodes qualify, slots, the order
 * of choice (share of slots, then load, then round-robin), rejecters, nodes
 * that had a go, `busy`, and pending work going out oldest first.
 */
import * as assert from 'uvu/assert';
import { defaultWpkOptions } from '../hub/wpk/service.js';
import type { WpkRecord } from '../hub/wpk/types.js';
import { wpkMemoryAdapter } from '../hub/wpk/store.js';
import { FakeClock } from './helpers/clock.js';
import { rigSuite, runs, type Rig } from './helpers/wpk-rig.js';

const test = rigSuite('wpk placement: mode one');
const SWEEP = defaultWpkOptions.sweepIntervalMs;
const ACCEPT = defaultWpkOptions.acceptTimeoutMs;
const BUSY = defaultWpkOptions.busyRestMs;

const assignees = (ws: WpkRecord[]) => ws.map((w) => w.assignee);
async function createMany(rig: Rig, n: number, req: Parameters<Rig['create']>[0] = {}): Promise<WpkRecord[]> {
  const out: WpkRecord[] = [];
  for (let i = 0; i < n; i++) out.push(await rig.create(req));
  return out;
}
const beat = (rig: Rig, id: string, load: number) => rig.registry.applyHeartbeat(id, { load }, rig.clock.now());

test('only active nodes with the capability, the labels and the listed ids qualify', async ({ rig }) => {
  rig.node('camera', { capabilities: ['camera'], maxConcurrency: 9 });
  rig.node('away', { maxConcurrency: 9, labels: { site: 'berlin' } });
  rig.offline('away');
  rig.node('hamburg', { maxConcurrency: 9, labels: { site: 'hamburg', rack: '1' } });
  rig.node('berlin', { maxConcurrency: 9, labels: { site: 'berlin', rack: '2' } });
  const byLabel = await rig.create({ labels: { site: 'berlin' } });
  const byTwoLabels = await rig.create({ labels: { site: 'hamburg', rack: '2' } });
  const byName = await rig.create({ nodes: ['hamburg', 'away'] });
  const noneActive = await rig.create({ nodes: ['away', 'camera'] });
  assert.equal(assignees([byLabel, byTwoLabels, byName, noneActive]), ['berlin', null, 'hamburg', null]);
  assert.equal([byTwoLabels.state, noneActive.state], ['pending', 'pending']);
  rig.online('away');
  assert.is(rig.get(noneActive.wpk_id).assignee, 'away', 'a node that comes back takes the pending work it matches');
});

test('a node has max_concurrency slots (1 if undeclared); a WPK holds its slot from dispatch to its final update', async ({ rig }) => {
  rig.node('plain');
  rig.node('big', { maxConcurrency: 3 });
  const ws = await createMany(rig, 5);
  assert.equal(assignees(ws), ['plain', 'big', 'big', 'big', null]);
  assert.equal([rig.service.inFlightOn('plain'), rig.service.inFlightOn('big')], [1, 3]);
  const onPlain = ws.find((w) => w.assignee === 'plain')!;
  const waiting = ws.find((w) => w.assignee === null)!;
  rig.send('plain', onPlain.wpk_id, 1, 'accepted');
  rig.send('plain', onPlain.wpk_id, 1, 'running', { progress: 0.9 });
  assert.is(waiting.state, 'pending', 'accepted and running still hold the slot');
  rig.send('plain', onPlain.wpk_id, 1, 'succeeded');
  assert.equal([waiting.assignee, waiting.attempt, waiting.state], ['plain', 1, 'dispatched'], 'the final update frees it');
});

test('the lowest share of slots in use comes first', async ({ rig }) => {
  rig.node('four', { maxConcurrency: 4 });
  rig.node('one');
  const ws = await createMany(rig, 6);
  // four 0/4 = one 0/1 (tie, round-robin) -> four; one 0/1 < four 1/4 -> one; then only four has room.
  assert.equal(assignees(ws), ['four', 'one', 'four', 'four', 'four', null]);
});

test('then the lowest reported load (in steps of 0.1), then round-robin', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id, { maxConcurrency: 10 });
  beat(rig, 'a', 0.9);
  beat(rig, 'b', 0.12);
  beat(rig, 'c', 0.14);
  const finish = (w: WpkRecord) => rig.complete(w.assignee!, w.wpk_id, 1);
  const picks: Array<string | null> = [];
  for (let i = 0; i < 4; i++) {
    const w = await rig.create({});
    picks.push(w.assignee);
    finish(w); // the share of slots stays 0 everywhere
  }
  assert.equal(picks, ['b', 'c', 'b', 'c'], 'b and c are the same step (0.1): they alternate; a (0.9) never');
  beat(rig, 'a', 0.01);
  const w = await rig.create({});
  assert.is(w.assignee, 'a', 'a lower load wins at once');
});

test('ties go round-robin: the node picked least recently first', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  const picks: Array<string | null> = [];
  for (let i = 0; i < 6; i++) {
    const w = await rig.create({});
    picks.push(w.assignee);
    rig.complete(w.assignee!, w.wpk_id, 1);
  }
  assert.equal(picks, ['a', 'b', 'c', 'a', 'b', 'c']);
});

test('a node that rejected the WPK is not asked again; nodes that had a go at it come last', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  const w = await rig.create({ max_attempts: 4 });
  assert.is(w.assignee, 'a');
  rig.advance(ACCEPT + SWEEP); // a never accepts: lost, but not a refusal
  assert.is(w.assignee, 'b', 'not a again while others had no go');
  rig.send('b', w.wpk_id, 2, 'rejected', { error: 'no such action' });
  assert.is(w.assignee, 'c');
  rig.send('c', w.wpk_id, 3, 'rejected', { error: 'no such action' });
  assert.equal([w.state, runs(w)], ['pending', [['a', 1, 'lost'], ['b', 2, 'rejected'], ['c', 3, 'rejected']]], 'a let its trigger time out: it waits until a shows life');
  rig.online('a');
  assert.equal(runs(w).at(-1), ['a', 4, 'dispatched'], 'a may run it again; b and c are never asked again');
});

test('when every capable node has rejected it, the WPK fails at once (attempts left or not)', async ({ rig }) => {
  rig.node('a');
  rig.node('b');
  rig.node('away');
  rig.offline('away');
  const w = await rig.create({ max_attempts: 5 });
  rig.send(w.assignee!, w.wpk_id, 1, 'rejected', { error: 'unknown action "x"' });
  rig.send(w.assignee!, w.wpk_id, 2, 'rejected', { error: 'unknown action "x"' });
  assert.equal([w.state, w.attempt], ['failed', 2]);
  assert.match(w.error ?? '', /^every capable node rejected it; attempt 2 on [ab] rejected: unknown action "x"$/);
  assert.is(rig.triggers(w.wpk_id).length, 2);
});

test('a node still busy with other work keeps a rejected WPK waiting rather than failing it', async ({ rig }) => {
  rig.node('a');
  rig.node('b');
  const hold = await rig.create({});
  const w = await rig.create({});
  assert.equal([hold.assignee, w.assignee], ['a', 'b']);
  rig.send('b', w.wpk_id, 1, 'rejected', { error: 'unsupported' });
  assert.equal([w.state, w.attempt], ['pending', 1], 'a is capable, only full');
  rig.complete('a', hold.wpk_id, 1);
  assert.equal([w.assignee, w.attempt], ['a', 2]);
});

test('a `busy` rejection is passing: 2 s without new work for that node, then it is asked again', async ({ rig }) => {
  rig.node('a');
  const w = await rig.create({});
  rig.send('a', w.wpk_id, 1, 'rejected', { error: 'busy: 1 of 1 work packages running' });
  assert.equal([w.state, rig.triggers(w.wpk_id).length], ['pending', 1], 'not failed: a busy node has not refused it');
  const other = await rig.create({});
  assert.is(other.state, 'pending', 'no new work for a resting node');
  rig.advance(BUSY - 1);
  assert.equal(rig.triggers().length, 1, 'still resting');
  rig.advance(SWEEP);
  assert.equal([w.assignee, w.attempt, w.state], ['a', 2, 'dispatched'], 'asked again after the rest, oldest first');
  assert.is(other.state, 'pending', 'one slot');
});

test('no node free: the WPK waits pending and goes out as soon as a node appears or frees a slot, oldest first', async ({ rig }) => {
  const ws = await createMany(rig, 3);
  assert.ok(ws.every((w) => w.state === 'pending' && w.attempt === 0 && w.assignee === null));
  rig.node('a');
  assert.equal(assignees(ws), ['a', null, null], 'a new node takes the oldest');
  rig.complete('a', ws[0]!.wpk_id, 1);
  assert.equal(assignees(ws), ['a', 'a', null], 'a freed slot takes the next oldest');
  rig.node('b', { maxConcurrency: 2 });
  assert.equal(assignees(ws), ['a', 'a', 'b']);
});

test('a freed slot goes to the next waiting WPK when the oldest one was refused by that node', async ({ rig }) => {
  rig.node('a');
  rig.node('b');
  const refused = await rig.create({});
  const onB = await rig.create({});
  assert.equal(assignees([refused, onB]), ['a', 'b']);
  rig.send('a', refused.wpk_id, 1, 'rejected', { error: 'unsupported' });
  assert.is(refused.state, 'pending', 'waits for b, the only node left');
  const onA = await rig.create({});
  const next = await rig.create({});
  assert.equal([onA.assignee, next.state], ['a', 'pending']);
  rig.complete('a', onA.wpk_id, 1);
  assert.equal([next.assignee, next.state], ['a', 'dispatched'], 'a is free: the WPK behind the one a refused goes to it');
  assert.is(refused.state, 'pending');
});

test('after a hub restart, pending work behind restored work in flight goes to a node that appears', async ({ rig: before, use }) => {
  const adapter = wpkMemoryAdapter();
  const first = use({ adapter, clock: before.clock });
  first.node('a');
  const running = await first.create({});
  first.send('a', running.wpk_id, 1, 'accepted');
  const waiting = await first.create({});
  assert.is(waiting.state, 'pending');
  await first.stop();

  const clock = new FakeClock(first.clock.now() + 5000);
  const second = use({ adapter, clock, start: false });
  second.registry.restore([...first.registry.all()]);
  await second.load();
  second.service.start();
  assert.equal([second.get(running.wpk_id).state, second.get(waiting.wpk_id).state], ['dispatched', 'pending']);
  second.node('b');
  assert.equal([second.get(waiting.wpk_id).assignee, second.get(waiting.wpk_id).state], ['b', 'dispatched']);
});

test('oldest first holds for a WPK that waits again after its node was lost', async ({ rig }) => {
  rig.node('a');
  rig.node('b');
  const [older, onB, newer] = await createMany(rig, 3);
  assert.equal(assignees([older!, onB!, newer!]), ['a', 'b', null]);
  rig.offline('a');
  assert.equal([older!.state, older!.attempt], ['pending', 1], 'lost, and no node free');
  rig.complete('b', onB!.wpk_id, 1);
  assert.equal([older!.assignee, older!.attempt, newer!.state], ['b', 2, 'pending'], 'the older WPK goes first');
});

test('the choice follows the registry at once: a node re-registering with other capabilities is chosen by those', async ({ rig }) => {
  rig.node('a', { maxConcurrency: 4 });
  assert.is((await rig.create({})).assignee, 'a');
  rig.node('a', { maxConcurrency: 4, capabilities: ['camera'] }); // same boot, new description
  assert.equal([(await rig.create({ capability: 'camera' })).assignee, (await rig.create({})).state], ['a', 'pending']);
  rig.offline('a');
  assert.is((await rig.create({ capability: 'camera' })).state, 'pending', 'an offline node gets nothing');
});

test.run();
