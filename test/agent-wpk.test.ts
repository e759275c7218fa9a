/**
 * Work packages on the edge agent, driven the way the hub drives them: a
 * plain MQTT client publishes triggers and commands to a real (self-started)
 * aedes over TCP and collects the execution updates, each checked against
 * the JSON Schema the hub validates with (helpers/wpk.ts).
 */
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SPOOL_FILE, type ActionHandler } from '../agent/index.js';
import { ProgressThrottle } from '../agent/progress.js';
import { parseTrigger } from '../agent/triggers.js';
import { topics } from '../lib/topics.js';
import type { ExecutionUpdate } from '../lib/wire.js';
import { validators } from '../schemas/index.js';
import { FakeClock } from './helpers/clock.js';
import { bounded } from './helpers/scope.js';
import { sleep, waitFor } from './helpers/time.js';
import { agentOn, fresh, gated, hubOn, NODE, setup, startBroker, states, type Hub } from './helpers/wpk.js';

const t = topics();

const runs = suite('agent work packages');

runs('subscribes QoS 1 to the trigger topics of exactly each capability: broadcast and addressed to this node', bounded(async (scope) => {
  const b = await startBroker(scope);
  const subscribed: Array<{ topic: string; qos: number }> = [];
  b.broker.on('subscribe', (subs, client) => {
    if (client?.id === NODE) subscribed.push(...subs.map((s) => ({ topic: s.topic, qos: s.qos })));
  });
  await agentOn(scope, b.port);
  await waitFor(() => subscribed.length >= 7, { label: 'subscriptions' });
  const triggers = subscribed.filter((s) => t.parse(s.topic)?.kind === 'trigger').sort((x, y) => x.topic.localeCompare(y.topic));
  assert.equal(triggers, [
    { topic: t.trigger('basic-actions'), qos: 1 }, { topic: t.trigger('basic-actions', NODE), qos: 1 },
    { topic: t.trigger('monitoring'), qos: 1 }, { topic: t.trigger('monitoring', NODE), qos: 1 },
  ]);
  assert.equal(subscribed.length, 7, 'commands, hub status, its desired state and two trigger topics per capability');
  assert.ok(subscribed.some((s) => s.topic === t.desired(NODE) && s.qos === 1), 'its own desired state, QoS 1');
}));

runs('a trigger on the topic addressed to this node runs; one addressed to another node never arrives', bounded(async (scope) => {
  const { hub } = await setup(scope);
  const now = Date.now();
  const mine = { wpk_id: 'wpk_addr', capability: 'basic-actions', action: 'echo', params: { n: 1 }, mode: 'one', assignee: NODE, attempt: 1, created_at: now, deadline: now + 60_000 };
  const theirs = { ...mine, wpk_id: 'wpk_other', assignee: 'edge-999' };
  await hub.client.publishAsync(t.trigger('basic-actions', 'edge-999'), JSON.stringify(theirs), { qos: 1 });
  await hub.client.publishAsync(t.trigger('basic-actions', NODE), JSON.stringify(mine), { qos: 1 });
  const done = await hub.final('wpk_addr');
  assert.equal(done.result, { n: 1 });
  assert.equal(hub.of('wpk_other'), []);
}));

runs('echo: accepted, running, succeeded in order, with its params as result', bounded(async (scope) => {
  const { hub } = await setup(scope);
  const before = Date.now();
  const trigger = await hub.trigger({ params: { window: '5m', n: 3 } });
  const done = await hub.final(trigger.wpk_id);
  assert.equal(hub.states(trigger.wpk_id), ['accepted', 'running', 'succeeded']);
  assert.equal(done.result, { window: '5m', n: 3 });
  for (const u of hub.of(trigger.wpk_id)) {
    assert.equal({ wpk_id: u.wpk_id, node_id: u.node_id, attempt: u.attempt }, { wpk_id: trigger.wpk_id, node_id: NODE, attempt: 1 });
    assert.ok(u.ts >= before && u.ts <= Date.now());
  }
  // No params at all: an empty object comes back.
  const bare = await hub.trigger({ mode: 'all', assignee: undefined, capability: 'monitoring' });
  assert.equal((await hub.final(bare.wpk_id)).result, {});
}));

runs('a trigger assigned to another node is ignored', bounded(async (scope) => {
  const { hub, logs } = await setup(scope);
  const other = await hub.trigger({ assignee: 'edge-002' });
  const mine = await hub.trigger();
  await hub.final(mine.wpk_id); // triggers arrive in order: the first was handled before this one
  assert.equal(hub.of(other.wpk_id), []);
  assert.equal(logs.filter((l) => l.wpk_id === other.wpk_id), [], 'silently');
}));

runs('mode all: targets that do not name this node are ignored; naming it, or absent, runs', bounded(async (scope) => {
  const { hub } = await setup(scope);
  const elsewhere = await hub.trigger({ mode: 'all', assignee: undefined, targets: ['edge-002', 'edge-003'] });
  const named = await hub.trigger({ mode: 'all', assignee: undefined, targets: ['edge-002', NODE] });
  const everyone = await hub.trigger({ mode: 'all', assignee: undefined });
  assert.equal((await hub.final(named.wpk_id)).state, 'succeeded');
  assert.equal((await hub.final(everyone.wpk_id)).state, 'succeeded');
  assert.equal(hub.of(elsewhere.wpk_id), []);
}));

runs('a trigger delivered twice runs once; the next attempt runs again', bounded(async (scope) => {
  const gate = gated();
  const { hub } = await setup(scope, { actions: { work: gate.action } });
  const first = await hub.trigger({ action: 'work' });
  await hub.client.publishAsync(t.trigger('basic-actions'), JSON.stringify(first), { qos: 1 });
  const control = await hub.trigger();
  await hub.final(control.wpk_id);
  gate.release('done');
  await hub.final(first.wpk_id);
  assert.equal(gate.calls, 1);
  assert.equal(hub.states(first.wpk_id), ['accepted', 'running', 'succeeded']);
  await hub.trigger({ ...first, attempt: 2, action: 'echo' });
  await waitFor(() => hub.of(first.wpk_id).filter((u) => u.attempt === 2 && u.state === 'succeeded').length === 1, { label: 'attempt 2' });
}));

runs('beyond concurrency a trigger is rejected busy; heartbeats report running_wpks', bounded(async (scope) => {
  const gate = gated();
  const { hub } = await setup(scope, { concurrency: 2, actions: { work: gate.action } });
  const a = await hub.trigger({ action: 'work' });
  const b = await hub.trigger({ action: 'work' });
  const c = await hub.trigger({ action: 'work' });
  const refused = await hub.final(c.wpk_id);
  assert.equal(refused.state, 'rejected');
  assert.equal(refused.error, 'busy: 2 of 2 work packages running');
  assert.equal(hub.states(c.wpk_id), ['rejected'], 'never accepted');
  await waitFor(() => hub.beats.at(-1)?.running_wpks === 2, { label: 'heartbeat running_wpks 2' });
  gate.release({ ok: true });
  assert.equal((await hub.final(a.wpk_id)).result, { ok: true });
  assert.equal((await hub.final(b.wpk_id)).state, 'succeeded');
  await waitFor(() => hub.beats.at(-1)?.running_wpks === 0, { label: 'heartbeat running_wpks 0' });
  // A slot is free again.
  assert.equal((await hub.final((await hub.trigger()).wpk_id)).state, 'succeeded');
}));

runs('unknown action and passed deadline are rejected with the reason', bounded(async (scope) => {
  const { hub } = await setup(scope, { actions: { collect: () => ({}) } });
  const unknown = await hub.trigger({ action: 'launch-rockets' });
  assert.equal((await hub.final(unknown.wpk_id)).error, 'unknown action "launch-rockets"; this agent runs: echo, sleep, collect');
  const late = await hub.trigger({ deadline: Date.now() - 1000 });
  const refused = await hub.final(late.wpk_id);
  assert.equal(refused.state, 'rejected');
  assert.match(refused.error!, /^deadline passed \d+ ms ago$/);
}));

runs('malformed triggers are logged once with the reason and ignored', bounded(async (scope) => {
  const { hub, logs, agent } = await setup(scope);
  const valid = { wpk_id: 'wpk_bad', capability: 'basic-actions', action: 'echo', mode: 'one', attempt: 1, created_at: 1, deadline: Date.now() + 60_000 };
  const bad = ['not json', '[]', JSON.stringify({ ...valid, attempt: 0 }), JSON.stringify({ ...valid, extra: 1 }),
    JSON.stringify({ ...valid, targets: [] }), JSON.stringify({ ...valid, capability: 'monitoring' })];
  for (const payload of bad) await hub.client.publishAsync(t.trigger('basic-actions'), payload, { qos: 1 });
  const control = await hub.trigger();
  await hub.final(control.wpk_id);
  const warnings = logs.filter((l) => l.level === 40 && l.msg === 'ignoring malformed work-package trigger');
  assert.equal(warnings.length, bad.length);
  assert.ok(warnings.every((w) => typeof w.reason === 'string' && w.reason.length > 0));
  assert.match(String(warnings[2]!.reason), /attempt/);
  assert.match(String(warnings[5]!.reason), /differs from its topic/);
  assert.equal(hub.of('wpk_bad'), []);
  assert.ok(agent.connected);
}));

runs('cancel aborts the action; the execution ends failed "canceled by the hub"', bounded(async (scope) => {
  const { hub, logs } = await setup(scope);
  const trigger = await hub.trigger({ action: 'sleep', params: { ms: 60_000 } });
  await waitFor(() => hub.states(trigger.wpk_id).includes('running'), { label: 'running' });
  await hub.command({ command: 'cancel', wpk_id: 'wpk_unknown', attempt: 1 });
  await hub.command({ command: 'cancel', wpk_id: trigger.wpk_id, attempt: 2 }); // another attempt: not this one
  await hub.command({ command: 'cancel', wpk_id: trigger.wpk_id, attempt: 1 });
  const done = await hub.final(trigger.wpk_id);
  assert.equal({ state: done.state, error: done.error }, { state: 'failed', error: 'canceled by the hub' });
  assert.equal(hub.states(trigger.wpk_id), ['accepted', 'running', 'failed']);
  const ignored = logs.filter((l) => l.command === 'cancel' && l.level === 20 && /not running here/.test(String(l.msg)));
  assert.equal(ignored.map((l) => `${String(l.wpk_id)}#${String(l.attempt)}`), ['wpk_unknown#1', `${trigger.wpk_id}#2`]);
}));

runs('timeout_ms: the signal fires first, then timed_out; a late result is ignored', bounded(async (scope) => {
  const seen: Array<{ reason: string; updatesBefore: number }> = [];
  let hubRef: Hub | undefined;
  const stubborn: ActionHandler = (_params, ctx) => new Promise((resolve) => {
    ctx.signal.addEventListener('abort', () => {
      const reason = ctx.signal.reason as DOMException;
      seen.push({ reason: `${reason.name}: ${reason.message}`, updatesBefore: hubRef!.updates.length });
      setTimeout(() => resolve('too late'), 50); // ignores the abort for a while
    });
  });
  const { hub, logs } = await setup(scope, { actions: { stubborn } });
  hubRef = hub;
  const trigger = await hub.trigger({ action: 'stubborn', timeout_ms: 100 });
  const done = await hub.final(trigger.wpk_id);
  assert.equal({ state: done.state, error: done.error }, { state: 'timed_out', error: 'timed out after 100 ms' });
  assert.equal(seen.map((s) => s.reason), ['TimeoutError: timed out after 100 ms']);
  await waitFor(() => logs.some((l) => /settled after its execution had ended/.test(String(l.msg))), { label: 'late result logged' });
  assert.equal(hub.states(trigger.wpk_id), ['accepted', 'running', 'timed_out']);
  // The built-in sleep honours the signal too.
  const sleeper = await hub.trigger({ action: 'sleep', params: { ms: 60_000 }, timeout_ms: 50 });
  assert.equal((await hub.final(sleeper.wpk_id)).state, 'timed_out');
}));

runs('progress is reported as running updates, throttled; a pending one is dropped by the final state', bounded(async (scope) => {
  const steps: ActionHandler = async (_params, ctx) => {
    ctx.progress(0.1); // sent at once
    ctx.progress(0.2); // coalesced ...
    ctx.progress(0.3); // ... into one trailing report of 0.3
    ctx.progress(Number.NaN); // ignored
    await sleep(400);
    ctx.progress(0.9); // within 250 ms of the trailing report: pending, then superseded by succeeded
    return { steps: 4 };
  };
  const { hub } = await setup(scope, { actions: { steps } });
  const trigger = await hub.trigger({ action: 'steps' });
  await hub.final(trigger.wpk_id);
  const reported = hub.of(trigger.wpk_id).map((u) => (u.progress === undefined ? u.state : `${u.state} ${u.progress}`));
  assert.equal(reported, ['accepted', 'running', 'running 0.1', 'running 0.3', 'succeeded']);
  const [p1, p3] = hub.of(trigger.wpk_id).filter((u) => u.progress !== undefined);
  assert.ok(p3!.ts - p1!.ts >= 200, `trailing report ${p3!.ts - p1!.ts} ms after the first`);
}));

runs('custom actions: results normalised, throws become failed with the message cut to 2048 chars', bounded(async (scope) => {
  const { hub } = await setup(scope, {
    actions: {
      add: (params) => (params.a as number) + (params.b as number),
      nothing: async () => undefined,
      when: () => ({ at: new Date(0) }),
      boom: () => { throw new Error(`x${'y'.repeat(5000)}`); },
      reject: () => Promise.reject('plain string'),
      huge: () => ({ blob: 'z'.repeat(70_000) }),
      cyclic: () => { const o: Record<string, unknown> = {}; o.self = o; return o; },
      // Replaces the built-in.
      echo: (params) => ({ echoed: params }),
    },
  });
  const run = async (action: string, params?: Record<string, unknown>) => hub.final((await hub.trigger({ action, params })).wpk_id);
  assert.equal((await run('add', { a: 2, b: 3 })).result, { value: 5 });
  assert.equal((await run('nothing')).result, {});
  assert.equal((await run('when')).result, { at: '1970-01-01T00:00:00.000Z' });
  assert.equal((await run('echo', { k: 1 })).result, { echoed: { k: 1 } });
  const boom = await run('boom');
  assert.equal(boom.state, 'failed');
  assert.equal(boom.error!.length, 2048);
  assert.ok(boom.error!.startsWith('xyyy'));
  assert.equal((await run('reject')).error, 'plain string');
  assert.match((await run('huge')).error!, /^result too large: the update would be \d+ bytes, at most 65536/);
  assert.match((await run('cyclic')).error!, /not JSON/);
  assert.match((await run('sleep', { ms: -1 })).error!, /sleep needs params\.ms/);
}));

runs('stop() aborts running work and reports it failed "agent stopped" before the offline status', bounded(async (scope) => {
  const gate = gated();
  const { hub, agent } = await setup(scope, { actions: { work: gate.action } });
  const statuses: string[] = [];
  hub.client.on('message', (topic, payload) => {
    if (topic === t.status(NODE)) statuses.push(`${String(JSON.parse(payload.toString()).reason)} after ${hub.updates.length}`);
  });
  await hub.client.subscribeAsync(t.status(NODE), { qos: 1 });
  const trigger = await hub.trigger({ action: 'work' });
  await waitFor(() => hub.states(trigger.wpk_id).includes('running'), { label: 'running' });
  await agent.stop();
  const done = await hub.final(trigger.wpk_id);
  assert.equal({ state: done.state, error: done.error }, { state: 'failed', error: 'agent stopped' });
  assert.equal(gate.contexts[0]!.signal.aborted, true);
  await waitFor(() => statuses.some((s) => s.startsWith('shutdown')), { label: 'shutdown status' });
  assert.equal(statuses.find((s) => s.startsWith('shutdown')), `shutdown after ${hub.updates.length}`, 'the failed update came first');
}));

const offline = suite('agent work packages across outages');

offline('broker gone mid-WPK: updates are spooled and replayed in order after the reconnect, before new ones', bounded(async (scope) => {
  const gate = gated();
  const first = await startBroker(scope);
  const hub1 = await hubOn(scope, first.port);
  const { agent, logs } = await agentOn(scope, first.port, { actions: { work: gate.action } });
  const trigger = await hub1.trigger({ action: 'work' });
  await waitFor(() => hub1.states(trigger.wpk_id).includes('running'), { label: 'running' });
  await first.close();
  await waitFor(() => !agent.connected, { label: 'agent noticed the outage' });
  // Accepted work keeps running while offline.
  gate.contexts[0]!.progress(0.5);
  gate.release({ finished: 'offline' });
  // Logged right before the final update goes to the spool (offline: at once).
  await waitFor(() => logs.some((l) => l.msg === 'work package finished' && l.wpk_id === trigger.wpk_id), { label: 'final update spooled' });
  // The hub's client is subscribed on the new broker before the agent can reach it (the old port opens last).
  const second = await startBroker(scope);
  const hub2 = await hubOn(scope, second.port);
  await second.listen(first.port);
  const done = await hub2.final(trigger.wpk_id, 3000);
  assert.equal(done.result, { finished: 'offline' });
  assert.equal(states(hub1.updates), [`${trigger.wpk_id} accepted`, `${trigger.wpk_id} running`]);
  assert.equal(states(fresh(hub2.updates, hub1.updates)), [`${trigger.wpk_id} running 0.5`, `${trigger.wpk_id} succeeded`]);
  assert.ok(logs.some((l) => l.msg === 'replayed spooled execution updates' && l.replayed === 2));
  // Re-subscribed to the triggers on reconnect; new work follows the replay.
  const next = await hub2.trigger();
  await hub2.final(next.wpk_id);
  assert.equal(states(fresh(hub2.updates, hub1.updates)).slice(2), [`${next.wpk_id} accepted`, `${next.wpk_id} running`, `${next.wpk_id} succeeded`]);
}, { timeoutMs: 8000 }));

offline('the spool survives an agent restart (a torn last line is ignored) and is removed once replayed', bounded(async (scope) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edgefed-spool-'));
  scope.defer(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, SPOOL_FILE);
  const gate = gated();
  const first = await startBroker(scope);
  const hub1 = await hubOn(scope, first.port);
  const { agent: before } = await agentOn(scope, first.port, { spoolDir: dir, actions: { work: gate.action } });
  const quick = await hub1.trigger({ action: 'work' });
  const long = await hub1.trigger({ action: 'sleep', params: { ms: 60_000 } });
  await waitFor(() => hub1.states(long.wpk_id).includes('running'), { label: 'both running' });
  await first.close();
  await waitFor(() => !before.connected, { label: 'agent noticed the outage' });
  gate.release({ n: 1 });
  await waitFor(() => readFile(file, 'utf8').then((text) => text.includes('succeeded'), () => false), { label: 'spooled to disk' });
  await before.stop(); // offline: the aborted one's final update goes to the spool too
  const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as ExecutionUpdate);
  assert.equal(states(lines), [`${quick.wpk_id} succeeded`, `${long.wpk_id} failed`]);
  assert.equal(lines[1]!.error, 'agent stopped');
  // A power cut in the middle of the next write.
  await appendFile(file, '{"wpk_id":"wpk_torn","node_id":"edge-0');

  const second = await startBroker(scope);
  const hub2 = await hubOn(scope, second.port);
  const { agent: after, logs } = await agentOn(scope, second.port, { spoolDir: dir });
  await hub2.final(long.wpk_id);
  assert.equal(states(hub2.updates), [`${quick.wpk_id} succeeded`, `${long.wpk_id} failed`]);
  assert.equal(hub2.of(quick.wpk_id)[0]!.result, { n: 1 });
  assert.not.equal(after.bootId, before.bootId);
  assert.ok(logs.some((l) => l.msg === 'found spooled execution updates from a previous run' && l.torn_line === true && l.updates === 2));
  await waitFor(() => readFile(file).then(() => false, (err: NodeJS.ErrnoException) => err.code === 'ENOENT'), { label: 'spool file removed' });
}, { timeoutMs: 8000 }));

offline('a full spool drops the oldest updates, with one warning per overflow episode', bounded(async (scope) => {
  const gate = gated();
  const first = await startBroker(scope);
  const hub1 = await hubOn(scope, first.port);
  const { agent, logs } = await agentOn(scope, first.port, { spoolMax: 2, actions: { work: gate.action } });
  const triggers = [await hub1.trigger({ action: 'work' }), await hub1.trigger({ action: 'work' }), await hub1.trigger({ action: 'work' })];
  await waitFor(() => triggers.every((x) => hub1.states(x.wpk_id).includes('running')), { label: 'three running' });
  await first.close();
  await waitFor(() => !agent.connected, { label: 'agent noticed the outage' });
  gate.release('ok'); // three final updates for a spool of two
  // Each is logged right before it goes to the spool: after the third, every overflow warning is out.
  await waitFor(() => logs.filter((l) => l.msg === 'work package finished').length === 3, { label: 'three final updates spooled' });
  const full = logs.filter((l) => /offline spool full/.test(String(l.msg)));
  assert.equal(full.length, 1);
  assert.equal(full[0]!.level, 40);
  const second = await startBroker(scope);
  const hub2 = await hubOn(scope, second.port);
  await second.listen(first.port);
  await hub2.final(triggers[2]!.wpk_id, 3000);
  assert.equal(states(fresh(hub2.updates, hub1.updates)), [`${triggers[1]!.wpk_id} succeeded`, `${triggers[2]!.wpk_id} succeeded`]);
  await waitFor(() => logs.some((l) => /spool drained/.test(String(l.msg)) && l.dropped === 1), { label: 'episode summary' });
}, { timeoutMs: 8000 }));

const units = suite('agent work-package units');

units('parseTrigger agrees with wpkTriggerSchema', () => {
  const base = { wpk_id: 'wpk_1', capability: 'monitoring', action: 'collect', mode: 'one', attempt: 1, created_at: 0, deadline: 1 };
  const cases: unknown[] = [
    base,
    { ...base, params: { a: 1 }, assignee: 'n1', targets: ['n1', 'n2'], timeout_ms: 1000, mode: 'all' },
    { ...base, params: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`k${i}`, i])) },
    { ...base, params: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, i])) },
    { ...base, params: [] }, { ...base, params: null }, { ...base, mode: 'some' }, { ...base, attempt: 1001 }, { ...base, attempt: 1.5 },
    { ...base, created_at: -1 }, { ...base, deadline: '1' }, { ...base, timeout_ms: 0 }, { ...base, timeout_ms: 604_800_001 },
    { ...base, assignee: 'a/b' }, { ...base, targets: [] }, { ...base, targets: ['n1', 'n1'] }, { ...base, targets: ['#'] },
    { ...base, targets: Array.from({ length: 1001 }, (_, i) => `n${i}`) }, { ...base, wpk_id: 'x'.repeat(65) }, { ...base, action: '' },
    { ...base, surprise: true }, Object.fromEntries(Object.entries(base).filter(([k]) => k !== 'deadline')),
  ];
  for (const value of cases) {
    const ours = parseTrigger(Buffer.from(JSON.stringify(value))).ok;
    assert.equal(ours, validators.wpkTrigger(value).ok, JSON.stringify(value).slice(0, 120));
  }
});

units('ProgressThrottle: leading report, one trailing report with the latest value, clamped, cancel drops', () => {
  const clock = new FakeClock(0);
  const sent: number[] = [];
  const throttle = new ProgressThrottle((f) => sent.push(f), 40, clock);
  throttle.report(-1);
  throttle.report(0.5);
  throttle.report(2);
  assert.equal(sent, [0]);
  clock.advance(39);
  assert.equal(sent, [0], 'within the interval: held');
  clock.advance(1);
  assert.equal(sent, [0, 1], 'trailing report carries the latest value, clamped');
  clock.advance(160);
  throttle.report(1);
  assert.equal(sent, [0, 1], 'an unchanged value is not sent again');
  throttle.report(0.7);
  assert.equal(sent, [0, 1, 0.7]);
  throttle.report(0.8);
  throttle.cancel();
  assert.is(clock.pending, 0, 'cancel clears the timer');
  clock.advance(1000);
  assert.equal(sent, [0, 1, 0.7], 'cancel drops the pending report');
});

runs.run();
offline.run();
units.run();
