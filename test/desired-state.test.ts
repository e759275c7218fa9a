/**
 * Desired state's rules without a broker: RFC 7386 merge patch, the delta,
 * the bounds, and the hub's state service (versions, If-Match, reports of
 * other versions, the broker's copy replaced when it differs).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jsonDepth, mergePatch, stateBoundsProblem, stateDelta } from '../lib/desired-state.js';
import { MAX_STATE_BYTES, MAX_STATE_DEPTH } from '../lib/limits.js';
import { silentLogger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import { newCounters } from '../hub/counters.js';
import { Registry, type NodeChange } from '../hub/registry.js';
import { isInSync } from '../hub/state/model.js';
import { StateRequestError, StateService } from '../hub/state/service.js';
import { createChangeSink } from '../hub/changes.js';
import { nodeSignature } from '../server/feed/views.js';
import { NodeJournal } from '../hub/journal.js';
import { HubObservers } from '../hub/observe.js';

const test = suite('desired state');

// RFC 7386 appendix A, every example.
const RFC_EXAMPLES: Array<[unknown, unknown, unknown]> = [
  [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
  [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
  [{ a: 'b' }, { a: null }, {}],
  [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
  [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
  [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
  [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
  [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  [['a', 'b'], ['c', 'd'], ['c', 'd']],
  [{ a: 'b' }, ['c'], ['c']],
  [{ a: 'foo' }, null, null],
  [{ a: 'foo' }, 'bar', 'bar'],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

test('merge patch: the examples of RFC 7386 appendix A', () => {
  for (const [target, patch, result] of RFC_EXAMPLES) {
    const before = structuredClone(target);
    assert.equal(mergePatch(target, patch), result, JSON.stringify({ target, patch }));
    assert.equal(target, before, 'the target is not changed');
  }
});

test('delta: desired keys whose reported value differs, nested objects compared deeply', () => {
  assert.equal(stateDelta({ a: 1, b: { x: 1, y: 2 }, c: [1, 2] }, { a: 1, b: { x: 1 }, c: [1, 2], extra: true }), { b: { y: 2 } });
  assert.equal(stateDelta({ a: 1 }, null), { a: 1 });
  assert.equal(stateDelta({ c: [1, 2] }, { c: [2, 1] }), { c: [1, 2] }, 'arrays compare whole, in order');
  assert.equal(stateDelta({ o: { k: 1 } }, { o: 'scalar' }), { o: { k: 1 } });
  assert.equal(stateDelta({ b: { x: 1, y: 2 } }, { b: { y: 2, x: 1 } }), {}, 'key order does not matter');
});

test('bounds: 16 KB and 8 levels', () => {
  assert.is(jsonDepth({}), 1);
  assert.is(jsonDepth({ a: [{ b: 1 }] }), 3);
  let deep: Record<string, unknown> = {};
  const root = deep;
  for (let i = 1; i < MAX_STATE_DEPTH; i += 1) { const next = {}; deep.n = next; deep = next; }
  assert.is(stateBoundsProblem(root), undefined);
  deep.n = {};
  assert.match(stateBoundsProblem(root) ?? '', /deeper than 8/);
  assert.is(stateBoundsProblem({ s: 'x'.repeat(MAX_STATE_BYTES - 20) }), undefined);
  assert.match(stateBoundsProblem({ s: 'x'.repeat(MAX_STATE_BYTES) }) ?? '', /limit is 16384/);
});

interface Rig { service: StateService; registry: Registry; published: Array<{ topic: string; payload: string }>; changes: NodeChange[]; counters: ReturnType<typeof newCounters> }

function rig(): Rig {
  const changes: NodeChange[] = [];
  const registry = new Registry((c) => changes.push(c));
  const published: Rig['published'] = [];
  const counters = newCounters();
  let now = 1_000;
  const service = new StateService({
    topics: topics(), registry, counters, log: silentLogger, now: () => (now += 1),
    out: { publish: (topic, payload) => published.push({ topic, payload: payload.toString() }) },
  });
  registry.applyRegistration({ node_id: 'n1', capabilities: ['c'], boot_id: 'b1', ts: 1 }, { now: 1, live: true });
  changes.length = 0;
  return { service, registry, published, changes, counters };
}

test('versions: every change raises the version by one, a no-op patch changes nothing', () => {
  const r = rig();
  assert.is(r.service.view('n1')?.version, 0);
  assert.ok(r.service.view('n1')?.in_sync, 'no desired state: in sync');
  const v1 = r.service.patch('n1', { interval_s: 5, debug: true });
  assert.is(v1.version, 1);
  assert.equal(v1.delta, { interval_s: 5, debug: true });
  assert.not.ok(v1.in_sync);
  const v2 = r.service.patch('n1', { debug: null });
  assert.is(v2.version, 2);
  assert.equal(v2.desired, { interval_s: 5 });
  assert.is(r.service.patch('n1', { interval_s: 5 }).version, 2, 'nothing changed: same version');
  assert.is(r.published.length, 2);
  assert.is(r.published[1]!.topic, 'edgefed/v1/nodes/n1/desired');
  assert.equal(JSON.parse(r.published[1]!.payload).version, 2);
  assert.is(r.changes.filter((c) => c.kind === 'state').length, 2, 'each change goes through the registry\'s listener (store, feed)');
  assert.is(r.registry.get('n1')?.twin?.version, 2, 'kept in the node record');
});

test('If-Match: a mismatch is 412 and changes nothing; a match applies', () => {
  const r = rig();
  r.service.patch('n1', { a: 1 });
  try {
    r.service.patch('n1', { a: 2 }, 0);
    assert.unreachable('must refuse');
  } catch (err) {
    assert.instance(err, StateRequestError);
    assert.is((err as StateRequestError).status, 412);
  }
  assert.equal(r.service.view('n1')?.desired, { a: 1 });
  assert.is(r.counters.state.precondition_failed, 1);
  assert.is(r.service.patch('n1', { a: 2 }, 1).version, 2);
});

test('unknown node is 404; too large or too deep is 413 and changes nothing', () => {
  const r = rig();
  assert.throws(() => r.service.patch('nope', { a: 1 }), (e: unknown) => (e as StateRequestError).status === 404);
  r.service.patch('n1', { a: 1 });
  assert.throws(() => r.service.patch('n1', { big: 'x'.repeat(MAX_STATE_BYTES) }), (e: unknown) => (e as StateRequestError).status === 413);
  assert.equal(r.service.view('n1')?.desired, { a: 1 });
  assert.is(r.service.view('n1')?.version, 1);
});

test('reports: in sync at the current version; older versions and never-desired versions are ignored', () => {
  const r = rig();
  r.service.patch('n1', { a: 1 });
  r.service.patch('n1', { a: 2 });
  const sigBefore = nodeSignature(r.registry.get('n1')!, 0);
  assert.is(r.registry.get('n1')?.twin?.in_sync, false, 'the record carries in_sync');
  r.service.onReported('n1', { version: 2, state: { a: 2 }, ts: 5 });
  assert.ok(r.service.view('n1')?.in_sync);
  assert.is(r.registry.get('n1')?.twin?.in_sync, true);
  assert.is.not(nodeSignature(r.registry.get('n1')!, 0), sigBefore, 'the live feed sends the node again');
  r.service.onReported('n1', { version: 1, state: { a: 1 }, ts: 6 });
  assert.is(r.service.view('n1')?.reported_version, 2, 'an older version does not move the report back');
  r.service.onReported('n1', { version: 9, state: { a: 9 }, ts: 7 });
  assert.is(r.service.view('n1')?.reported_version, 2, 'a version never desired is ignored');
  assert.is(r.counters.state.ignored_reports, 2);
  r.service.onReported('n1', { version: 2, state: { a: 2 }, ts: 8 });
  assert.is(r.changes.filter((c) => c.kind === 'state').length, 3, 'the same report again writes nothing');
});

test('a report with an error is out of sync and shows the error', () => {
  const r = rig();
  r.service.patch('n1', { model: 'v3' });
  r.service.onReported('n1', { version: 1, state: {}, ts: 5, error: 'model v3 not found' });
  const v = r.service.view('n1')!;
  assert.not.ok(v.in_sync);
  assert.is(v.reported_error, 'model v3 not found');
  assert.not.ok(isInSync(r.registry.get('n1')!.twin!));
  assert.is(r.service.countOutOfSync(), 1);
});

test('the broker\'s copy: a replayed match is confirmed, a lost or foreign one is published again', () => {
  const r = rig();
  r.service.patch('n1', { a: 1 });
  const ours = r.published[0]!.payload;
  r.published.length = 0;
  r.service.onConnecting();
  r.service.onDesiredSeen('n1', Buffer.from(ours), true);
  assert.is(r.service.republishMissing(), 0, 'the broker kept it');
  r.service.onConnecting();
  assert.is(r.service.republishMissing(), 1, 'a broker that lost its store gets it back');
  assert.equal(r.published[0]!.payload, ours);
  r.published.length = 0;
  r.service.onDesiredSeen('n1', Buffer.from(JSON.stringify({ version: 7, state: { evil: true }, ts: 1 })), false);
  assert.equal(r.published[0]?.payload, ours, 'a desired state the hub did not publish is replaced');
  r.published.length = 0;
  r.service.onDesiredSeen('ghost', Buffer.from(JSON.stringify({ version: 1, state: {}, ts: 1 })), true);
  assert.equal(r.published[0], { topic: 'edgefed/v1/nodes/ghost/desired', payload: '' }, 'cleared for a node without desired state');
});

test('a node forgotten by the registry has its retained desired and reported topics cleared', () => {
  const published: Array<{ topic: string; payload: string }> = [];
  const counters = newCounters();
  let service: StateService | undefined;
  const sink = createChangeSink({
    journal: new NodeJournal(() => undefined), counters, log: silentLogger, events: new HubObservers(),
    nodeChanged: () => undefined, forgotten: (id) => service!.forget(id),
  });
  const registry = new Registry(sink);
  service = new StateService({ topics: topics(), registry, counters, log: silentLogger, now: () => 1, out: { publish: (topic, payload) => published.push({ topic, payload: payload.toString() }) } });
  registry.applyRegistration({ node_id: 'gone', capabilities: ['c'], boot_id: 'b', ts: 1 }, { now: 1, live: true });
  service.patch('gone', { a: 1 });
  registry.deregister('gone', 2);
  published.length = 0;
  registry.pruneDeregistered(10_000, 1);
  assert.equal(published, [{ topic: 'edgefed/v1/nodes/gone/desired', payload: '' }, { topic: 'edgefed/v1/nodes/gone/reported', payload: '' }]);
});

test.run();
