/**
 * Exactly once across a hub crash: the agent replays its recent final updates
 * to a restarted hub (a new hub boot_id), so a result the dead hub had
 * received but not yet written is not lost and the work is not run again.
 * The crash is simulated deterministically: wpks.json is put back as it was
 * while the execution was running, as if the hub had died before its write.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent } from '../agent/index.js';
import { resolveOptions } from '../agent/options.js';
import { RecentFinals, RECENT_FINALS_MAX } from '../agent/recent-finals.js';
import type { Federation } from '../server/federation.js';
import { wpkPath } from '../hub/wpk/store.js';
import type { WpkRecord } from '../hub/wpk/types.js';
import { silentLogger } from '../lib/log.js';
import type { ExecutionState, ExecutionUpdate } from '../lib/wire.js';
import { federation } from './helpers/federation.js';
import { bounded, type Scope } from './helpers/scope.js';
import { capturingLogger, type LogLine } from './helpers/logs.js';
import { waitFor } from './helpers/time.js';
import { agentOn, gated, hubOn as wireHubOn, startBroker, type Hub } from './helpers/wpk.js';
import { topics } from '../lib/topics.js';

const NODE = 'edge-replay';

function final(wpkId: string, state: ExecutionState = 'succeeded', extra: Partial<ExecutionUpdate> = {}): ExecutionUpdate {
  return { wpk_id: wpkId, node_id: NODE, attempt: 1, state, ts: Date.now(), ...(state === 'succeeded' ? { result: {} } : {}), ...extra };
}

const bound = suite('agent: recent finals kept for a restarted hub');

bound('keeps only final states of work that ran, one per execution, oldest first', () => {
  const finals = new RecentFinals({ maxAgeMs: 60_000, now: () => 0 });
  for (const state of ['accepted', 'running', 'rejected'] as const) finals.record(final(`w-${state}`, state));
  finals.record(final('a', 'failed', { error: 'x' }));
  finals.record(final('b', 'timed_out', { error: 'y' }));
  finals.record(final('c'));
  finals.record(final('a', 'failed', { error: 'again' })); // the same execution again: replaced, moved to the end
  finals.record(final('a', 'failed', { attempt: 2, error: 'second attempt' }));
  assert.equal(finals.recent().map((u) => `${u.wpk_id}#${u.attempt} ${u.error ?? ''}`), ['b#1 y', 'c#1 ', 'a#1 again', 'a#2 second attempt']);
});

bound('old finals expire after maxAgeMs', () => {
  let now = 1000;
  const finals = new RecentFinals({ maxAgeMs: 500, now: () => now });
  finals.record(final('old'));
  now = 1300;
  finals.record(final('new'));
  assert.equal(finals.recent().map((u) => u.wpk_id), ['old', 'new']);
  now = 1501;
  assert.equal(finals.recent().map((u) => u.wpk_id), ['new'], 'the first is past 500 ms');
  now = 1801;
  assert.equal(finals.recent(), []);
  assert.is(finals.size, 0);
});

bound('count and byte bounds drop the oldest; maxAgeMs 0 keeps nothing', () => {
  const byCount = new RecentFinals({ maxAgeMs: 60_000, now: () => 0 });
  for (let i = 0; i < RECENT_FINALS_MAX + 5; i += 1) byCount.record(final(`w${i}`));
  assert.is(byCount.size, RECENT_FINALS_MAX);
  assert.is(byCount.recent()[0]!.wpk_id, 'w5');

  const big = { blob: 'x'.repeat(1000) };
  const byBytes = new RecentFinals({ maxAgeMs: 60_000, maxBytes: 3500, now: () => 0 });
  for (let i = 0; i < 5; i += 1) byBytes.record(final(`b${i}`, 'succeeded', { result: big }));
  assert.equal(byBytes.recent().map((u) => u.wpk_id), ['b2', 'b3', 'b4']);

  const off = new RecentFinals({ maxAgeMs: 0 });
  off.record(final('z'));
  assert.is(off.size, 0);
});

bound('replayFinalMs is validated like the other options', () => {
  const base = { nodeId: NODE, capabilities: ['basic-actions'] };
  assert.is(resolveOptions(base).replayFinalMs, 600_000, 'default 10 min');
  assert.is(resolveOptions({ ...base, replayFinalMs: 0 }).replayFinalMs, 0);
  for (const bad of [-1, 1.5, 86_400_001, '60000']) {
    assert.throws(() => resolveOptions({ ...base, replayFinalMs: bad as number }), /replayFinalMs must be an integer in 0\.\.86400000/);
  }
});

bound.run();

const e2e = suite('agent: finals replayed to a hub that lost them');

async function hubOn(scope: Scope, dataDir: string, mqttPort = 0, logs?: LogLine[]): Promise<Federation> {
  const wpk = { sweepIntervalMs: 20, timeoutGraceMs: 100, acceptTimeoutMs: 500 };
  const f = await federation({ dataDir, mqttListen: true, mqttPort, ...(logs ? { logger: capturingLogger(logs) } : {}), hub: { wpk } });
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= f.stop());
  scope.defer(stop);
  return { ...f, stop };
}

/** A hub on its own data dir with one agent whose `hold` action waits for the test; the node is active. */
async function hubWithHeldAgent(scope: Scope) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-replay-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const first = await hubOn(scope, dir);
  const port = Number(new URL(first.mqttUrl!).port);
  const gate = gated();
  const agent = await startAgent({
    nodeId: NODE, capabilities: ['basic-actions'], brokerUrl: first.mqttUrl, heartbeatIntervalMs: 200,
    reconnectMinMs: 20, reconnectMaxMs: 100, logger: silentLogger, actions: { hold: gate.action },
  });
  scope.defer(() => agent.stop());
  await waitFor(() => first.hub.node(NODE)?.status === 'active', { label: 'node active' });
  return { dir, first, port, gate };
}

async function onDisk(dataDir: string, wpkId: string): Promise<WpkRecord | undefined> {
  const file = JSON.parse(await fs.readFile(wpkPath(dataDir), 'utf8')) as { wpks: WpkRecord[] };
  return file.wpks.find((w) => w.wpk_id === wpkId);
}

e2e('a success the hub received but never wrote is replayed after its restart: applied on attempt 1, not run again', bounded(async (scope) => {
  const { dir, first, port, gate } = await hubWithHeldAgent(scope);

  // Long enough to finish with the replay, short enough that without it the restarted hub redispatches within the test.
  const w = await first.hub.wpks.create({ capability: 'basic-actions', action: 'hold', timeout_ms: 1500, max_attempts: 3 });
  await waitFor(async () => (await onDisk(dir, w.wpk_id))?.executions[0]?.state === 'running', { label: 'running on disk' });
  const whileRunning = await fs.readFile(wpkPath(dir), 'utf8');

  gate.release({ answer: 42 });
  await waitFor(() => first.hub.wpks.get(w.wpk_id)?.state === 'succeeded', { label: 'succeeded on the first hub' });
  await first.stop();
  // The crash: the hub had the result in memory only.
  await fs.writeFile(wpkPath(dir), whileRunning);

  const second = await hubOn(scope, dir, port);
  assert.is(second.hub.wpks.get(w.wpk_id)?.state, 'running', 'the restarted hub starts from the stale file');
  await waitFor(() => second.hub.wpks.get(w.wpk_id)?.state === 'succeeded', {
    timeoutMs: 3000, label: `succeeded after the restart (is ${second.hub.wpks.get(w.wpk_id)?.state})`,
  });
  const done = second.hub.wpks.get(w.wpk_id)!;
  assert.equal(done.result, { answer: 42 }, "the node's result");
  assert.is(done.attempt, 1, 'no second attempt dispatched');
  assert.equal(done.executions.map((e) => [e.node_id, e.attempt, e.state]), [[NODE, 1, 'succeeded']]);
  assert.is(gate.calls, 1, 'the action ran once');
  await waitFor(async () => (await onDisk(dir, w.wpk_id))?.state === 'succeeded', { label: 'written' });
}, { timeoutMs: 10_000 }));

e2e('work in progress that the restarted hub believes only dispatched is not given up after the accept timeout', bounded(async (scope) => {
  const { dir, first, port, gate } = await hubWithHeldAgent(scope);
  const w = await first.hub.wpks.create({ capability: 'basic-actions', action: 'hold', timeout_ms: 5000 });
  await waitFor(async () => (await onDisk(dir, w.wpk_id))?.executions[0]?.state === 'running', { label: 'running on disk' });
  await first.stop();
  // The crash: the hub had written the dispatch, not the accepted/running it received right after.
  const file = JSON.parse(await fs.readFile(wpkPath(dir), 'utf8')) as { wpks: WpkRecord[] };
  const record = file.wpks.find((x) => x.wpk_id === w.wpk_id)!;
  Object.assign(record, { state: 'dispatched' });
  Object.assign(record.executions[0]!, { state: 'dispatched', started_at: null });
  // A control the node knows nothing of, dispatched on it at the same time: no update ever comes for
  // it, so the restarted hub gives it up after the accept timeout (500 ms from its start), in a sweep
  // that also passes over the WPK under test. One attempt only, so it is not dispatched again.
  const control = { ...structuredClone(record), wpk_id: `${record.wpk_id}c`, max_attempts: 1 };
  file.wpks.push(control);
  await fs.writeFile(wpkPath(dir), JSON.stringify(file));

  const second = await hubOn(scope, dir, port);
  assert.is(second.hub.wpks.get(w.wpk_id)?.executions[0]?.state, 'dispatched');
  await waitFor(() => second.hub.wpks.get(w.wpk_id)?.executions[0]?.state === 'running', { label: 'running again on the restarted hub' });
  await waitFor(() => second.hub.wpks.get(control.wpk_id)?.executions[0]?.state === 'lost', { label: 'the control given up after the accept timeout' });
  assert.is(second.hub.wpks.get(w.wpk_id)?.attempt, 1, 'not given up');
  gate.release({ done: true });
  await waitFor(() => second.hub.wpks.get(w.wpk_id)?.state === 'succeeded', { label: 'succeeded' });
  assert.is(gate.calls, 1, 'the action ran once');
}, { timeoutMs: 10_000 }));

e2e('a hub that already recorded the finals ignores the replay quietly (counted as stale, no refusal)', bounded(async (scope) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-replay-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const first = await hubOn(scope, dir);
  const port = Number(new URL(first.mqttUrl!).port);
  const agent = await startAgent({
    nodeId: NODE, capabilities: ['basic-actions'], brokerUrl: first.mqttUrl, heartbeatIntervalMs: 200,
    reconnectMinMs: 20, reconnectMaxMs: 100, logger: silentLogger,
  });
  scope.defer(() => agent.stop());
  await waitFor(() => first.hub.node(NODE)?.status === 'active', { label: 'node active' });
  const ids: string[] = [];
  for (let i = 0; i < 3; i += 1) ids.push((await first.hub.wpks.create({ capability: 'basic-actions', action: 'echo', params: { i } })).wpk_id);
  await waitFor(() => ids.every((id) => first.hub.wpks.get(id)?.state === 'succeeded'), { label: 'all succeeded' });
  await first.stop();

  const logs: LogLine[] = [];
  const second = await hubOn(scope, dir, port, logs);
  await waitFor(() => second.hub.counters().ignored.stale_update >= 3, { timeoutMs: 3000, label: 'replays counted as stale' });
  for (const id of ids) assert.is(second.hub.wpks.get(id)?.executions.length, 1);
  assert.equal(second.hub.counters().refusals, {}, 'no refusal');
  const aboutThem = logs.filter((l) => ids.includes(l.wpk_id as string));
  assert.equal(aboutThem, [], 'not logged per message');
}, { timeoutMs: 10_000 }));

e2e.run();

const wire = suite('agent: when finals are replayed');

/**
 * Proof that the agent has handled everything the hub sent it so far, and
 * that the hub has everything the agent published meanwhile: a trigger of an
 * action the agent lacks comes back rejected, after both (one ordered
 * connection each way).
 */
async function caughtUp(hub: Hub): Promise<void> {
  const probe = await hub.trigger({ action: 'no-such-action' });
  assert.is((await hub.final(probe.wpk_id)).state, 'rejected');
}

const hubOnline = (hub: Hub, bootId: string) =>
  hub.client.publishAsync(topics().hubStatus(), JSON.stringify({ state: 'online', boot_id: bootId, ts: Date.now() }), { qos: 1, retain: true });

wire('not on a reconnect to the same hub session; once, after the birth, on a new one, with a running for work in progress', bounded(async (scope) => {
  const first = await startBroker(scope);
  const hub1 = await wireHubOn(scope, first.port);
  await hubOnline(hub1, 'hub-A');
  const gate = gated();
  const { agent } = await agentOn(scope, first.port, { actions: { hold: gate.action } });
  const trigger = await hub1.trigger({ params: { n: 1 } });
  const done = await hub1.final(trigger.wpk_id);
  const held = await hub1.trigger({ action: 'hold' });
  const started = (await waitFor(() => hub1.of(held.wpk_id).find((u) => u.state === 'running'), { label: 'hold running' })).ts;

  // The agent's connection drops (the broker restarts) and comes back to the same hub session.
  await first.close();
  await waitFor(() => !agent.connected, { label: 'agent noticed the outage' });
  const second = await startBroker(scope);
  const hub2 = await wireHubOn(scope, second.port);
  await hubOnline(hub2, 'hub-A');
  const seen: string[] = [];
  hub2.client.on('message', (topic) => {
    const parsed = topics().parse(topic);
    seen.push(parsed?.kind === 'node' ? parsed.family : 'other');
  });
  await hub2.client.subscribeAsync(topics().allNodes('registration'), { qos: 1 });
  await second.listen(first.port);
  await waitFor(() => agent.connected, { label: 'reconnected' });
  // The agent subscribes before it re-announces, so once its registration is here it hears the hub.
  await waitFor(() => seen.includes('registration'), { label: 're-announced' });
  await hubOnline(hub2, 'hub-A'); // the same session again, live this time
  await caughtUp(hub2);
  assert.equal(hub2.of(trigger.wpk_id), [], 'nothing replayed to the session that already had it');
  assert.equal(hub2.of(held.wpk_id), []);

  // A new hub session: the birth, then the final exactly as first sent.
  seen.length = 0;
  await hubOnline(hub2, 'hub-B');
  const replayed = await hub2.final(trigger.wpk_id);
  assert.equal(replayed, done);
  assert.ok(seen.indexOf('registration') >= 0 && seen.indexOf('registration') < seen.indexOf('executions'), `re-announced first: ${seen.join(' ')}`);
  await caughtUp(hub2);
  assert.is(hub2.of(trigger.wpk_id).length, 1, 'once');
  const running = hub2.of(held.wpk_id);
  assert.equal(running.map((u) => [u.state, u.attempt]), [['running', 1]], 'one running for the execution in progress, no final');
  assert.ok(Math.abs(running[0]!.ts - started) < 50, `stamped with its start (${running[0]!.ts} vs ${started})`);
  gate.release();
  await hub2.final(held.wpk_id);
}, { timeoutMs: 8000 }));

wire.run();
