/**
 * Continuous work packages and scheduled starts (docs/protocol.md), rule by
 * rule, on the WPK service with a fake clock: nodes that match later (a new
 * node, one back online, one that gains the capability or label) run it once;
 * the end at the deadline; `scheduled` until start_at, cancellable; and both
 * across a hub restart.
 */
import * as assert from 'uvu/assert';
import { wpkMemoryAdapter } from '../hub/wpk/store.js';
import type { WpkRecord } from '../hub/wpk/types.js';
import { restartedRig, rigSuite, runs } from './helpers/wpk-rig.js';

const test = rigSuite('wpk engine: continuous and scheduled');
const SWEEP = 250;
const HOUR = 3_600_000;

const states = (w: WpkRecord) => runs(w).map(([n, , s]) => `${n}:${s}`);

test('continuous: every node that matches later runs it once; open until the deadline, then succeeded', async ({ rig }) => {
  rig.node('a', { labels: { site: 'x' } });
  rig.node('off', { labels: { site: 'x' } });
  rig.offline('off');
  rig.node('other', { labels: { site: 'y' } });
  rig.node('cam', { capabilities: ['camera'], labels: { site: 'x' } });
  rig.node('gone', { labels: { site: 'x' } });
  rig.offline('gone');
  const w = await rig.create({ mode: 'all', continuous: true, labels: { site: 'x' }, deadline: rig.clock.now() + HOUR });
  assert.equal(states(w), ['a:dispatched'], 'an offline node is not skipped: it runs it when it comes back');
  rig.complete('a', w.wpk_id, 1);
  assert.is(w.state, 'running', 'all done for now, yet open');
  rig.node('new', { labels: { site: 'x' } });
  rig.online('off');
  rig.node('other', { labels: { site: 'x' } }); // gains the label
  rig.node('cam', { capabilities: ['camera', 'monitoring'], labels: { site: 'x' } }); // gains the capability
  assert.equal(states(w), ['a:succeeded', 'new:dispatched', 'off:dispatched', 'other:dispatched', 'cam:dispatched']);
  for (const id of ['new', 'off', 'other', 'cam']) rig.complete(id, w.wpk_id, 1);
  rig.node('a', { labels: { site: 'x' }, bootId: 'reboot' });
  rig.advance(HOUR / 2);
  assert.equal([w.state, w.executions.length], ['running', 5], 'a node that ran it does not run it again, even after a restart');
  rig.advance(HOUR / 2);
  assert.equal([w.state, w.error, w.summary], ['succeeded', null, { succeeded: 5 }], 'a node still away at the deadline is not held against it');
  rig.node('late', { labels: { site: 'x' } });
  assert.is(w.executions.length, 5, 'after the deadline nobody gets it');
});

test('continuous: one execution that did not succeed fails it at the deadline; no node at all: expired', async ({ rig }) => {
  rig.node('a');
  const w = await rig.create({ mode: 'all', continuous: true, deadline: rig.clock.now() + 60_000 });
  rig.complete('a', w.wpk_id, 1, 'failed', { error: 'disk full' });
  rig.node('b');
  rig.complete('b', w.wpk_id, 1);
  rig.node('c');
  rig.silent('c');
  rig.advance(60_000 + SWEEP);
  assert.equal([w.state, w.error], ['failed', '1 of 3 node(s) succeeded'], 'c went silent while running it: lost');
  const none = await rig.create({ mode: 'all', continuous: true, capability: 'camera', deadline: rig.clock.now() + 60_000 });
  rig.advance(60_000 + SWEEP);
  assert.equal(none.state, 'expired');
});

test('continuous with a rollout: newcomers queue behind the targets known at the start', async ({ rig }) => {
  for (const id of ['b', 'c']) rig.node(id);
  const w = await rig.create({ mode: 'all', continuous: true, rollout: { max_per_minute: 60 } });
  rig.node('a');
  assert.equal(states(w), ['b:dispatched', 'c:queued', 'a:queued']);
  rig.advance(2000);
  assert.equal(states(w), ['b:dispatched', 'c:dispatched', 'a:dispatched']);
});

test('scheduled: nothing goes out before start_at; then it starts as if created then', async ({ rig }) => {
  rig.node('a');
  rig.node('b');
  const start = rig.clock.now() + 10 * 60_000;
  const w = await rig.create({ mode: 'all', start_at: start });
  assert.equal([w.state, w.start_at, w.deadline], ['scheduled', start, start + HOUR], 'the default deadline counts from the start');
  rig.offline('b');
  rig.advance(10 * 60_000 - SWEEP);
  assert.equal([w.state, rig.triggers(w.wpk_id).length], ['scheduled', 0]);
  rig.advance(SWEEP);
  assert.equal(states(w), ['b:skipped', 'a:dispatched'], 'offline at the start: skipped');
  rig.complete('a', w.wpk_id, 1);
  const one = await rig.create({ start_at: rig.clock.now() + 60_000 });
  rig.advance(60_000);
  assert.equal([one.state, one.assignee], ['dispatched', 'a'], 'mode one too');
});

test('scheduled: cancellable before it starts; a start_at in the past or after the deadline is refused', async ({ rig }) => {
  rig.node('a');
  const w = await rig.create({ start_at: rig.clock.now() + 60_000 });
  await rig.service.cancel(w.wpk_id);
  rig.advance(120_000);
  assert.equal([w.state, rig.triggers(w.wpk_id).length], ['canceled', 0]);
  const refuse = (req: Parameters<typeof rig.create>[0]) => rig.create(req).then(() => undefined, (e: unknown) => e as { code: string; message: string });
  const past = await refuse({ start_at: rig.clock.now() - 3_600_000 });
  assert.equal(past?.code, 'EDGEFED_ERR_WPK_START');
  assert.match(past?.message ?? '', /is in the past.*leave it out to start now/);
  const late = await refuse({ start_at: rig.clock.now() + 2 * HOUR, deadline: rig.clock.now() + HOUR });
  assert.match(late?.message ?? '', /start_at .* is not before the deadline/);
  const skewed = await rig.create({ start_at: rig.clock.now() - 5000 });
  assert.equal([skewed.state, skewed.start_at], ['dispatched', null], 'a few seconds behind (a client clock): starts now');
});

test('a hub restart: a scheduled WPK starts on time; a continuous one serves the nodes that joined meanwhile, not again the others', async (ctx) => {
  const adapter = wpkMemoryAdapter();
  const before = ctx.use({ adapter });
  before.node('a');
  const later = await before.create({ mode: 'all', start_at: before.clock.now() + 60_000 });
  const cont = await before.create({ mode: 'all', continuous: true });
  before.complete('a', cont.wpk_id, 1);
  const after = await restartedRig(ctx, before, adapter, 30_000);
  after.node('a');
  after.node('b');
  const c = after.get(cont.wpk_id);
  assert.equal(states(c), ['a:succeeded', 'b:dispatched']);
  const s = after.get(later.wpk_id);
  assert.is(s.state, 'scheduled');
  after.advance(30_000);
  assert.equal(states(s), ['a:dispatched', 'b:dispatched']);
});

test.run();
