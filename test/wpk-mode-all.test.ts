/**
 * Mode `all` of docs/protocol.md, rule by rule, on the WPK service with a
 * fake clock: one trigger listing the active nodes, offline nodes skipped
 * (or waited for with include_offline), busy nodes, nodes that register later, the end (every node final, or the
 * deadline once nothing runs), the summary, and triggers past MAX_TARGETS.
 */
import * as assert from 'uvu/assert';
import { MAX_TARGETS } from '../schemas/definitions.js';
import { rigSuite, runs } from './helpers/wpk-rig.js';

const test = rigSuite('wpk engine: mode all');

test('active matching nodes get it at once, in one trigger listing them in targets', async ({ rig }) => {
  for (const id of ['a', 'b']) rig.node(id);
  rig.node('c', { labels: { site: 'elsewhere' } });
  rig.node('cam', { capabilities: ['camera'] });
  const w = await rig.create({ mode: 'all', nodes: ['a', 'b', 'cam'] });
  const [trig, ...more] = rig.triggers(w.wpk_id);
  assert.equal(more, [], 'one trigger');
  assert.equal([trig!.targets, trig!.assignee, trig!.attempt, trig!.mode], [['a', 'b'], undefined, 1, 'all']);
  assert.is(rig.sent.find((s) => s.trigger)!.topic, 'edgefed/v1/wpk/monitoring/trigger', 'on the capability topic');
  assert.equal([w.state, w.attempt, w.max_attempts, w.assignee], ['dispatched', 1, 1, null]);
  const single = await rig.create({ mode: 'all', labels: { site: 'elsewhere' } });
  assert.is(rig.sent.find((s) => s.trigger?.wpk_id === single.wpk_id)!.topic, 'edgefed/v1/wpk/monitoring/trigger/c', "one target: that node's own topic");
});

test('running once a node started or finished; succeeded when every node succeeded; summary counts executions', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  const w = await rig.create({ mode: 'all' });
  rig.send('a', w.wpk_id, 1, 'accepted');
  assert.is(w.state, 'dispatched');
  rig.complete('b', w.wpk_id, 1);
  assert.is(w.state, 'running', 'b finished, a and c not');
  rig.complete('a', w.wpk_id, 1);
  rig.complete('c', w.wpk_id, 1);
  assert.equal([w.state, w.error, w.summary], ['succeeded', null, { succeeded: 3 }]);
});

test('a node that did not succeed fails it, with counts in error', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  const w = await rig.create({ mode: 'all' });
  rig.complete('a', w.wpk_id, 1);
  rig.complete('b', w.wpk_id, 1, 'failed', { error: 'disk full' });
  assert.is(w.state, 'running', 'c still runs');
  rig.send('c', w.wpk_id, 1, 'rejected', { error: 'unknown action' });
  assert.equal([w.state, w.error, w.summary], ['failed', '1 of 3 node(s) succeeded', { succeeded: 1, failed: 1, rejected: 1 }]);
});

test('offline at creation: skipped, with why; the WPK ends with the others, succeeded if all that ran succeeded', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  rig.offline('c');
  const w = await rig.create({ mode: 'all' });
  assert.equal(rig.triggers(w.wpk_id)[0]!.targets, ['a', 'b']);
  assert.equal(runs(w), [['c', 1, 'skipped'], ['a', 1, 'dispatched'], ['b', 1, 'dispatched']]);
  assert.match(w.executions[0]!.error ?? '', /offline when the work package was created.*include_offline/);
  rig.complete('a', w.wpk_id, 1);
  rig.complete('b', w.wpk_id, 1);
  assert.equal([w.state, w.error, w.summary], ['succeeded', null, { succeeded: 2, skipped: 1 }], 'not an hour waiting for c');
  rig.online('c');
  assert.equal(rig.triggers(w.wpk_id).length, 1, 'c skipped it: coming back does not run it');
});

test('every matching node offline: nothing ran, failed at once with the counts', async ({ rig }) => {
  rig.node('a');
  rig.offline('a');
  const w = await rig.create({ mode: 'all' });
  assert.equal([w.state, w.error, w.summary], ['failed', '0 of 0 node(s) succeeded; 1 skipped (offline at creation)', { skipped: 1 }]);
  assert.equal(rig.triggers(w.wpk_id), []);
});

test('include_offline: a node that is away gets it when it comes back; one lost mid-run is not asked again', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  rig.offline('c');
  const w = await rig.create({ mode: 'all', include_offline: true });
  assert.equal(rig.triggers(w.wpk_id)[0]!.targets, ['a', 'b']);
  rig.complete('a', w.wpk_id, 1);
  rig.send('b', w.wpk_id, 1, 'accepted');
  rig.offline('b');
  assert.equal([w.state, runs(w)], ['running', [['a', 1, 'succeeded'], ['b', 1, 'lost']]], 'c is registered: waited for');
  rig.online('c');
  assert.equal(rig.triggers(w.wpk_id)[1]!.targets, ['c']);
  rig.online('b');
  assert.equal(rig.triggers(w.wpk_id).length, 2, 'b ran it once already');
  rig.complete('c', w.wpk_id, 1);
  assert.equal([w.state, w.summary], ['failed', { succeeded: 2, lost: 1 }]);
});

test('a node with no free slot gets it when it frees one', async ({ rig }) => {
  rig.node('a');
  rig.node('b');
  const hold = await rig.create({ nodes: ['b'] });
  const w = await rig.create({ mode: 'all' });
  assert.equal(rig.triggers(w.wpk_id)[0]!.targets, ['a']);
  rig.complete('a', w.wpk_id, 1);
  assert.is(w.state, 'running', 'waits for b');
  rig.complete('b', hold.wpk_id, 1);
  assert.equal(rig.triggers(w.wpk_id)[1]!.targets, ['b']);
  rig.complete('b', w.wpk_id, 1);
  assert.equal([w.state, w.summary], ['succeeded', { succeeded: 2 }]);
});

test('with no such node at all it stays pending for the first one to come, or expires at the deadline', async ({ rig }) => {
  const w = await rig.create({ mode: 'all', capability: 'thermal' });
  const never = await rig.create({ mode: 'all', capability: 'sonar', deadline: rig.clock.now() + 1000 });
  assert.equal([w.state, never.state], ['pending', 'pending']);
  rig.node('th', { capabilities: ['thermal'] });
  assert.equal(rig.triggers(w.wpk_id)[0]!.targets, ['th']);
  rig.complete('th', w.wpk_id, 1);
  assert.is(w.state, 'succeeded');
  rig.advance(999);
  assert.is(never.state, 'pending');
  rig.advance(1); // a sweep falls on the deadline itself
  assert.equal([never.state, never.error], ['expired', 'no node with capability "sonar" could take it before the deadline']);
});

test('at the deadline, once nothing runs, it ends with the nodes it did not reach counted; one running is waited for', async ({ rig }) => {
  for (const id of ['a', 'b', 'c']) rig.node(id);
  rig.offline('c');
  const w = await rig.create({ mode: 'all', include_offline: true, deadline: rig.clock.now() + 1000, timeout_ms: 60_000 });
  rig.complete('a', w.wpk_id, 1);
  rig.send('b', w.wpk_id, 1, 'accepted');
  rig.send('b', w.wpk_id, 1, 'running');
  rig.advance(5000);
  assert.is(w.state, 'running', 'b still runs');
  rig.online('c');
  assert.equal(rig.triggers(w.wpk_id).length, 1, 'past the deadline nobody new gets it');
  rig.send('b', w.wpk_id, 1, 'succeeded');
  assert.equal([w.state, w.error], ['failed', '2 of 2 node(s) succeeded; 1 node(s) were not reached before the deadline']);
});

test('a node that registers later gets it while it is open, even when every earlier node is still running it', async ({ rig }) => {
  rig.node('a');
  rig.node('b');
  const w = await rig.create({ mode: 'all' });
  rig.send('a', w.wpk_id, 1, 'accepted');
  rig.send('b', w.wpk_id, 1, 'running');
  rig.node('late');
  assert.equal(rig.triggers(w.wpk_id).map((t) => t.targets), [['a', 'b'], ['late']]);
  rig.complete('a', w.wpk_id, 1);
  rig.complete('b', w.wpk_id, 1);
  assert.is(w.state, 'running', 'late is still running it');
  rig.complete('late', w.wpk_id, 1);
  assert.equal([w.state, w.summary], ['succeeded', { succeeded: 3 }]);
  rig.node('after');
  assert.equal(rig.triggers(w.wpk_id).length, 2, 'a node that registers after it ended does not get it');
});

test('more than MAX_TARGETS active nodes: several triggers, none listing more than MAX_TARGETS', async ({ rig }) => {
  for (let i = 0; i <= MAX_TARGETS; i++) rig.node(`n${i}`);
  const w = await rig.create({ mode: 'all' });
  const sizes = rig.triggers(w.wpk_id).map((t) => t.targets!.length);
  assert.equal(sizes, [MAX_TARGETS, 1]);
  assert.is(rig.counters.wpks.triggers, 2);
  assert.is(new Set(rig.triggers(w.wpk_id).flatMap((t) => t.targets!)).size, MAX_TARGETS + 1, 'each node named once');
});

test('max_attempts does not apply to mode all: any value but 1 is refused (422), 1 is taken', async ({ rig }) => {
  const err = await rig.create({ mode: 'all', max_attempts: 3 }).catch((e: unknown) => e);
  assert.equal([(err as { status: number }).status, (err as { code: string }).code], [422, 'EDGEFED_ERR_WPK_ATTEMPTS']);
  const ok = await rig.create({ mode: 'all', max_attempts: 1 });
  assert.is(ok.max_attempts, 1);
  assert.equal(rig.service.list().map((w) => w.wpk_id), [ok.wpk_id]);
});

test.run();
