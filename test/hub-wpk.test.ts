/**
 * The hub's work-package rules, driven by scripted nodes that speak the wire
 * contract over the embedded broker: exactly-once routing to the least-loaded
 * node, re-routing and failover, pending and deadlines, mode all, cancel, and
 * updates that must not move a finished WPK.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Federation } from '../server/federation.js';
import { changed, wpkFileText } from '../hub/wpk/store.js';
import type { WpkRecord } from '../hub/wpk/types.js';
import { topics } from '../lib/topics.js';
import { closeAll, collector, device, federation } from './helpers/federation.js';
import { scriptedNode, type ScriptedNode } from './helpers/nodes.js';
import { bounded, type Scope } from './helpers/scope.js';
import { sleep, waitFor } from './helpers/time.js';

const t = topics();
const test = suite('hub: work packages');

async function fed(scope: Scope, wpk: Record<string, unknown> = {}): Promise<Federation> {
  const f = await federation({ hub: { wpk: { sweepIntervalMs: 20, acceptTimeoutMs: 1000, timeoutGraceMs: 100, ...wpk } } });
  scope.defer(() => f.stop());
  return f;
}

const stateOf = (f: Federation, id: string) => f.hub.wpks.get(id)?.state;
const until = (f: Federation, w: WpkRecord, state: string, timeoutMs = 2000) =>
  waitFor(() => stateOf(f, w.wpk_id) === state, { timeoutMs, label: `${w.wpk_id} ${state} (is ${stateOf(f, w.wpk_id)})` });

/** Two capable nodes and a mode-one WPK: the assignee first, the other second. */
async function oneOfTwo(scope: Scope, f: Federation): Promise<{ w: WpkRecord; first: ScriptedNode; second: ScriptedNode }> {
  const [a, b] = await Promise.all(['a', 'b'].map((id) => scriptedNode(scope, f, id)));
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'x' });
  const first = w.assignee === a!.id ? a! : b!;
  return { w, first, second: first === a ? b! : a! };
}

test('mode one: exactly one capable node gets it; its success ends the WPK with the result', bounded(async (scope) => {
  const f = await fed(scope);
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => scriptedNode(scope, f, id)));
  const other = await scriptedNode(scope, f, 'n-other', { capabilities: ['camera'] });
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'collect', params: { window: '5m' } });
  assert.is(w.mode, 'one');
  assert.ok(w.assignee, 'an assignee is named at once');
  const node = nodes.find((n) => n.id === w.assignee)!;
  const trig = await node.triggerOf(w.wpk_id);
  assert.equal([trig.attempt, trig.action, trig.params, trig.assignee], [1, 'collect', { window: '5m' }, node.id]);
  await sleep(50);
  assert.equal(nodes.filter((n) => n.delivered.count > 0).map((n) => n.id), [node.id], 'only the assignee receives it (its own trigger topic)');
  assert.is(other.triggers.length, 0);
  await node.send(w.wpk_id, 1, 'accepted');
  await until(f, w, 'dispatched');
  await node.send(w.wpk_id, 1, 'running', { progress: 0.5 });
  await until(f, w, 'running');
  await node.send(w.wpk_id, 1, 'succeeded', { result: { cpu: 0.3 } });
  await until(f, w, 'succeeded');
  const done = f.hub.wpks.get(w.wpk_id)!;
  assert.equal(done.result, { cpu: 0.3 });
  assert.equal(done.executions.map((e) => [e.node_id, e.attempt, e.state, e.progress]), [[node.id, 1, 'succeeded', 1]]);
  assert.ok(done.executions[0]!.started_at && done.executions[0]!.finished_at);
}));

test('least loaded first, ties round-robin; never more than max_concurrency; the rest waits pending', bounded(async (scope) => {
  const f = await fed(scope);
  const nodes = await Promise.all(['a', 'b', 'c'].map((id) => scriptedNode(scope, f, id, { maxConcurrency: 2 })));
  const wpks: WpkRecord[] = [];
  for (let i = 0; i < 7; i++) wpks.push(await f.hub.wpks.create({ capability: 'monitoring', action: 'x' }));
  const perNode = (id: string) => wpks.filter((w) => w.assignee === id).length;
  assert.equal(nodes.map((n) => perNode(n.id)), [2, 2, 2], 'two each');
  assert.equal(wpks.slice(0, 3).map((w) => w.assignee).sort(), ['a', 'b', 'c'], 'the first three go round');
  const waiting = wpks[6]!;
  assert.is(waiting.state, 'pending');
  assert.is(waiting.attempt, 0);
  const freed = nodes.find((n) => n.id === wpks[0]!.assignee)!;
  await freed.complete(await freed.triggerOf(wpks[0]!.wpk_id));
  await waitFor(() => waiting.assignee === freed.id, { label: 'the pending WPK goes to the node that freed a slot' });
  assert.is((await freed.triggerOf(waiting.wpk_id)).attempt, 1);
}));

test('a node that answers rejected gets the WPK moved to another node (attempt + 1)', bounded(async (scope) => {
  const f = await fed(scope);
  const { w, first, second } = await oneOfTwo(scope, f);
  await first.send(w.wpk_id, 1, 'rejected', { error: 'busy: 4 of 4 work packages running' });
  const trig = await second.triggerOf(w.wpk_id, 2);
  assert.is(trig.assignee, second.id);
  await second.complete(trig);
  await until(f, w, 'succeeded');
  assert.equal(f.hub.wpks.get(w.wpk_id)!.executions.map((e) => e.state), ['rejected', 'succeeded']);
  assert.is(f.hub.counters().wpks.redispatches, 1);
}));

test('when every capable node rejected it, the WPK fails at once with the reason (no attempt wasted on the same node)', bounded(async (scope) => {
  const f = await fed(scope);
  const a = await scriptedNode(scope, f, 'a');
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'nope', max_attempts: 3 });
  await a.send(w.wpk_id, 1, 'rejected', { error: 'unknown action "nope"' });
  await until(f, w, 'failed');
  const done = f.hub.wpks.get(w.wpk_id)!;
  assert.is(done.attempt, 1);
  assert.match(done.error ?? '', /every capable node rejected it; attempt 1 on a rejected: unknown action "nope"/);
}));

test('a node that answers busy gets a rest, then the WPK again (a busy node is not refused for good)', bounded(async (scope) => {
  const f = await fed(scope, { busyRestMs: 150 });
  const a = await scriptedNode(scope, f, 'a');
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'x' });
  await a.send(w.wpk_id, 1, 'rejected', { error: 'busy: 1 of 1 work packages running' });
  await until(f, w, 'pending');
  const again = await a.triggerOf(w.wpk_id, 2, 2000);
  await a.complete(again);
  await until(f, w, 'succeeded');
}));

test('failover: the assignee dies (will) and the WPK moves to another node', bounded(async (scope) => {
  const f = await fed(scope);
  const { w, first, second } = await oneOfTwo(scope, f);
  await first.send(w.wpk_id, 1, 'accepted');
  await first.send(w.wpk_id, 1, 'running');
  await until(f, w, 'running');
  first.kill();
  const trig = await second.triggerOf(w.wpk_id, 2);
  const lost = f.hub.wpks.get(w.wpk_id)!.executions[0]!;
  assert.is(lost.state, 'lost');
  assert.match(lost.error ?? '', /offline/);
  await second.complete(trig);
  await until(f, w, 'succeeded');
}));

test('an assignee that never accepts is given up after the accept timeout; max_attempts ends it failed with the reason', bounded(async (scope) => {
  const f = await fed(scope, { acceptTimeoutMs: 150 });
  await Promise.all(['a', 'b'].map((id) => scriptedNode(scope, f, id)));
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'x', max_attempts: 2 });
  await until(f, w, 'failed');
  const done = f.hub.wpks.get(w.wpk_id)!;
  assert.equal(done.executions.map((e) => [e.attempt, e.state]), [[1, 'lost'], [2, 'lost']]);
  assert.match(done.error ?? '', /gave up after 2 attempt\(s\).*did not accept within 150 ms/);
  assert.not.equal(done.executions[0]!.node_id, done.executions[1]!.node_id, 'the retry went to the other node');
}));

test('an attempt past its timeout is timed out, its node told to cancel; the last one ends the WPK timed_out', bounded(async (scope) => {
  const f = await fed(scope);
  const a = await scriptedNode(scope, f, 'a');
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'x', timeout_ms: 100, max_attempts: 1 });
  await a.send(w.wpk_id, 1, 'accepted');
  await a.send(w.wpk_id, 1, 'running');
  await until(f, w, 'timed_out');
  await waitFor(() => a.commands.find((c) => c.command === 'cancel' && c.wpk_id === w.wpk_id && c.attempt === 1), { label: 'cancel command' });
}));

test('no capable node: pending, dispatched as soon as one appears; expired at the deadline otherwise', bounded(async (scope) => {
  const f = await fed(scope);
  const waits = await f.hub.wpks.create({ capability: 'gpu', action: 'x' });
  const expires = await f.hub.wpks.create({ capability: 'lidar', action: 'x', deadline: Date.now() + 200 });
  assert.is(waits.state, 'pending');
  const g = await scriptedNode(scope, f, 'g', { capabilities: ['gpu'] });
  await g.triggerOf(waits.wpk_id, 1);
  await until(f, expires, 'expired');
  assert.match(f.hub.wpks.get(expires.wpk_id)!.error ?? '', /no capable node/);
}));

test('the node choice follows the registry: a node that re-registers with new capabilities or goes away is seen at once', bounded(async (scope) => {
  const f = await fed(scope);
  const a = await scriptedNode(scope, f, 'a', { maxConcurrency: 4 });
  assert.is((await f.hub.wpks.create({ capability: 'monitoring', action: 'x' })).assignee, 'a');
  await a.client.publishAsync(t.registration('a'), JSON.stringify({ node_id: 'a', capabilities: ['camera'], boot_id: 'boot-a', ts: Date.now(), max_concurrency: 4 }), { qos: 1, retain: true });
  await waitFor(() => f.hub.node('a')?.capabilities.includes('camera'), { label: 'a re-registered' });
  assert.is((await f.hub.wpks.create({ capability: 'camera', action: 'x' })).assignee, 'a');
  assert.is((await f.hub.wpks.create({ capability: 'monitoring', action: 'x' })).state, 'pending', 'a no longer has monitoring');
  a.kill();
  await waitFor(() => f.hub.node('a')?.status === 'offline', { label: 'a offline' });
  assert.is((await f.hub.wpks.create({ capability: 'camera', action: 'x' })).state, 'pending', 'an offline node gets nothing');
}));

test('selectors: only listed nodes or labels qualify', bounded(async (scope) => {
  const f = await fed(scope);
  await scriptedNode(scope, f, 'a', { labels: { site: 'hamburg' }, maxConcurrency: 4 });
  const b = await scriptedNode(scope, f, 'b', { labels: { site: 'berlin' }, maxConcurrency: 4 });
  const byLabel = await f.hub.wpks.create({ capability: 'monitoring', action: 'x', labels: { site: 'berlin' } });
  const byName = await f.hub.wpks.create({ capability: 'monitoring', action: 'x', nodes: ['b'] });
  assert.equal([byLabel.assignee, byName.assignee], [b.id, b.id]);
}));

test('mode all: one trigger names every matching node; the WPK summarises them; a node that comes back later runs it too', bounded(async (scope) => {
  const f = await fed(scope);
  const [a, b] = await Promise.all(['a', 'b'].map((id) => scriptedNode(scope, f, id)));
  const c = await scriptedNode(scope, f, 'c');
  c.kill();
  await waitFor(() => f.hub.node('c')?.status === 'offline', { label: 'c offline' });
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'x', mode: 'all' });
  const ta = await a!.triggerOf(w.wpk_id);
  assert.equal(ta.targets?.sort(), ['a', 'b']);
  assert.is(ta.assignee, undefined);
  await a!.complete(ta);
  await b!.complete(await b!.triggerOf(w.wpk_id));
  await sleep(100);
  assert.is(stateOf(f, w.wpk_id), 'running', 'c is registered: the WPK waits for it');
  const c2 = await scriptedNode(scope, f, 'c', { bootId: 'boot-c-2' });
  await c2.complete(await c2.triggerOf(w.wpk_id));
  await until(f, w, 'succeeded');
  assert.equal(f.hub.wpks.get(w.wpk_id)!.summary, { succeeded: 3 });
}));

test('mode all with no capable node yet waits for the first one, until its deadline', bounded(async (scope) => {
  const f = await fed(scope);
  const w = await f.hub.wpks.create({ capability: 'thermal', action: 'x', mode: 'all' });
  const late = await f.hub.wpks.create({ capability: 'sonar', action: 'x', mode: 'all', deadline: Date.now() + 150 });
  assert.is(w.state, 'pending');
  const n = await scriptedNode(scope, f, 'th', { capabilities: ['thermal'] });
  await n.complete(await n.triggerOf(w.wpk_id));
  await until(f, w, 'succeeded');
  await until(f, late, 'expired');
  const health = (await (await fetch(`${f.api.url}/health`)).json()) as { wpks: Record<string, number> };
  assert.equal([health.wpks.succeeded, health.wpks.expired], [1, 1]);
}));

test('mode all: a failure on one node fails the WPK, with counts', bounded(async (scope) => {
  const f = await fed(scope);
  const [a, b] = await Promise.all(['a', 'b'].map((id) => scriptedNode(scope, f, id)));
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'x', mode: 'all' });
  await a!.complete(await a!.triggerOf(w.wpk_id));
  await b!.complete(await b!.triggerOf(w.wpk_id), 'failed', { error: 'disk full' });
  await until(f, w, 'failed');
  const done = f.hub.wpks.get(w.wpk_id)!;
  assert.equal(done.summary, { succeeded: 1, failed: 1 });
  assert.match(done.error ?? '', /1 of 2 node\(s\) succeeded/);
}));

test('cancel: canceled at once, the node is told, its late result is recorded but changes nothing; a second cancel is 409', bounded(async (scope) => {
  const f = await fed(scope);
  const a = await scriptedNode(scope, f, 'a');
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'x' });
  await a.send(w.wpk_id, 1, 'accepted');
  await a.send(w.wpk_id, 1, 'running');
  await until(f, w, 'running');
  const canceled = await f.hub.wpks.cancel(w.wpk_id);
  assert.is(canceled.state, 'canceled');
  await waitFor(() => a.commands.find((c) => c.command === 'cancel' && c.wpk_id === w.wpk_id), { label: 'cancel command' });
  await a.send(w.wpk_id, 1, 'succeeded', { result: { late: true } });
  await waitFor(() => f.hub.wpks.get(w.wpk_id)!.executions[0]!.state === 'succeeded', { label: 'late result recorded' });
  assert.is(stateOf(f, w.wpk_id), 'canceled');
  assert.is(f.hub.wpks.get(w.wpk_id)!.result, null);
  const again = await f.hub.wpks.cancel(w.wpk_id).catch((e: { status: number }) => e);
  assert.is((again as { status: number }).status, 409);
}));

test('duplicate, reordered and unknown updates never move an execution back or a finished WPK', bounded(async (scope) => {
  const f = await fed(scope);
  const a = await scriptedNode(scope, f, 'a');
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'x' });
  await a.complete(await a.triggerOf(w.wpk_id), 'failed', { error: 'boom' });
  await until(f, w, 'failed');
  const before = f.hub.counters().ignored.stale_update;
  await a.send(w.wpk_id, 1, 'running');
  await a.send(w.wpk_id, 1, 'succeeded', { result: {} });
  await a.send(w.wpk_id, 7, 'succeeded');
  await a.send('wpk_unknown', 1, 'succeeded');
  await waitFor(() => f.hub.counters().ignored.stale_update === before + 2 && f.hub.counters().ignored.unknown_execution === 2, { label: 'ignored and counted' });
  const done = f.hub.wpks.get(w.wpk_id)!;
  assert.equal([done.state, done.executions[0]!.state, done.executions[0]!.error], ['failed', 'failed', 'boom']);
}));

test('a trigger not published by the hub is refused (logged, counted); a bad update is refused like a bad registration', bounded(async (scope) => {
  const f = await fed(scope);
  const a = await scriptedNode(scope, f, 'a');
  const mallory = await device(f, 'mallory');
  scope.defer(() => closeAll(mallory));
  const errors = await collector(mallory, t.hubError('a'));
  await mallory.publishAsync(t.trigger('monitoring'), JSON.stringify({ wpk_id: 'wpk_evil', capability: 'monitoring', action: 'x', mode: 'one', attempt: 1, created_at: 1, deadline: Date.now() + 1000 }), { qos: 1 });
  await waitFor(() => f.hub.counters().refusals.not_allowed === 1, { label: 'foreign trigger refused' });
  assert.not.ok(f.hub.wpks.get('wpk_evil'));
  const w = await f.hub.wpks.create({ capability: 'monitoring', action: 'x' });
  await a.triggerOf(w.wpk_id);
  assert.is(f.hub.counters().refusals.not_allowed, 1, "the hub's own trigger is not refused");
  await a.client.publishAsync(t.execution('a', w.wpk_id), JSON.stringify({ wpk_id: w.wpk_id, node_id: 'a', attempt: 1, state: 'done', ts: 1 }), { qos: 1 });
  await waitFor(() => errors.length === 1, { label: 'hub error to the node' });
  assert.match(errors[0]!.payload, /state/);
  assert.is(stateOf(f, w.wpk_id), 'dispatched');
}));

test('bad requests are refused with a reason and create nothing', bounded(async (scope) => {
  const f = await fed(scope);
  for (const bad of [
    { capability: 'monitoring' },
    { capability: 'a/b', action: 'x' },
    { capability: 'monitoring', action: 'x', deadline: Date.now() - 1 },
    { capability: 'monitoring', action: 'x', mode: 'all', max_attempts: 3 },
  ]) {
    const err = await f.hub.wpks.create(bad as never).catch((e: { status: number; message: string }) => e);
    assert.is((err as { status: number }).status, 422, JSON.stringify(bad));
  }
  assert.is(f.hub.wpks.list().length, 0);
}));

test('a created WPK is on disk when create() resolves; a hub restart mid-WPK loses nothing', bounded(async (scope) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'edgefed-wpk-'));
  scope.defer(() => rmSync(dataDir, { recursive: true, force: true }));
  const opts = { dataDir, hub: { wpk: { sweepIntervalMs: 20 } } };
  const first = await federation(opts);
  let stopped = false;
  scope.defer(() => (stopped ? undefined : first.stop()));
  const a = await scriptedNode(scope, first, 'a');
  const w = await first.hub.wpks.create({ capability: 'monitoring', action: 'x', params: { n: 1 } });
  assert.ok(readFileSync(path.join(dataDir, 'wpks.json'), 'utf8').includes(w.wpk_id), 'persisted before create() resolved');
  await a.send(w.wpk_id, 1, 'accepted');
  await a.send(w.wpk_id, 1, 'running');
  await until(first, w, 'running');
  await first.stop();
  stopped = true;

  const second = await federation(opts);
  scope.defer(() => second.stop());
  const restored = second.hub.wpks.get(w.wpk_id)!;
  assert.equal([restored.state, restored.assignee, restored.executions[0]!.state], ['running', 'a', 'running']);
  // The node kept running it through the outage (same boot): it re-announces and reports the end.
  const back = await scriptedNode(scope, second, 'a');
  await back.send(w.wpk_id, 1, 'succeeded', { result: { n: 1 } });
  await until(second, w, 'succeeded');
  assert.equal(second.hub.wpks.get(w.wpk_id)!.result, { n: 1 });
}, { timeoutMs: 10_000 }));

test('wpks.json text: the same as JSON.stringify, with finished WPKs kept between writes until they change', bounded(async (scope) => {
  const f = await fed(scope);
  const a = await scriptedNode(scope, f, 'a', { maxConcurrency: 4 });
  const open = await f.hub.wpks.create({ capability: 'monitoring', action: 'x' });
  const done = await f.hub.wpks.create({ capability: 'monitoring', action: 'x' });
  await a.complete(await a.triggerOf(done.wpk_id));
  await until(f, done, 'succeeded');
  const doc = () => ({ format: 1, saved_at: 7, wpks: [open, done] });
  assert.is(wpkFileText(doc()), JSON.stringify(doc()));
  // A late result through the hub drops the kept text, so the next write has it.
  await a.send(done.wpk_id, 1, 'succeeded', { result: { again: true } });
  await a.send(open.wpk_id, 1, 'accepted');
  await waitFor(() => open.executions[0]!.state === 'accepted', { label: 'open WPK moved' });
  assert.is(wpkFileText(doc()), JSON.stringify(doc()), 'still equal after both changed');
  done.error = 'changed behind the store';
  assert.is.not(wpkFileText(doc()), JSON.stringify(doc()), 'a change without changed() is not seen: the cache is real');
  changed(done);
  assert.is(wpkFileText(doc()), JSON.stringify(doc()));
}));

test.run();
