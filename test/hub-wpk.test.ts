/**
 * Work packages over the wire: scripted nodes that speak the contract over
 * the embedded broker. The rules themselves (choice, moving on, deadlines,
 * mode all, stale updates, limits) are unit tests on a fake clock
 * (wpk-engine, wpk-placement, wpk-mode-all, wpk-lifecycle); here is what
 * needs the broker: triggers on each node's own topic, a Last Will moving
 * work, the handlers feeding the choice, cancel commands and late results
 * over MQTT, refusals, and wpks.json across a restart.
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
import { waitFor } from './helpers/time.js';

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
  // One WPK for each of the others, published after the first: once each has its own, a
  // broadcast of an earlier one would have reached it already (one publisher, in order).
  const more = [await f.hub.wpks.create({ capability: 'monitoring', action: 'collect' }), await f.hub.wpks.create({ capability: 'monitoring', action: 'collect' })];
  for (const m of more) await nodes.find((n) => n.id === m.assignee)!.triggerOf(m.wpk_id);
  assert.equal(nodes.map((n) => n.delivered.count), [1, 1, 1], 'each node received its own trigger only (its own trigger topic)');
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
  const health = (await (await fetch(`${f.api.url}/health`)).json()) as { wpks: Record<string, number> };
  assert.equal([health.wpks.failed, health.wpks.succeeded], [1, 0], '/health counts WPKs per state');
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
