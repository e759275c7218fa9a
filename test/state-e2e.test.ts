/**
 * Desired state end to end (issue 16) with the real parts: the embedded
 * broker on loopback TCP, the hub on a data dir, real agents. A node applies
 * what is set; an agent stopped while desired state changes twice applies
 * only the latest version when it comes back; a failing handler is reported
 * and retried on the next version, not in a loop; a restarted hub keeps the
 * state and gives its new (empty) broker the retained desired state again.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent, DESIRED_STATE_FILE, type Agent, type AgentOptions, type DesiredHandler } from '../agent/index.js';
import type { ApiNodeState, ApiNode } from '../lib/api.js';
import { jsonLogger, silentLogger } from '../lib/log.js';
import type { Federation } from '../server/federation.js';
import { fleetCounts, nodeView } from '../server/feed/views.js';
import { closeAll, collector, device, federation } from './helpers/federation.js';
import { waitFor, withTimeout } from './helpers/time.js';

interface Ctx { dir: string; fed: Federation | undefined; agents: Agent[] }
const test = suite<Ctx>('desired state end to end (real agents, TCP broker, data dir)', { dir: '', fed: undefined, agents: [] });

test.before.each(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-state-e2e-'));
  ctx.agents = [];
  ctx.fed = await start(ctx);
});
test.after.each(async (ctx) => {
  await Promise.all(ctx.agents.map((a) => a.stop()));
  await ctx.fed?.stop();
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

function start(ctx: Ctx, mqttPort = 0): Promise<Federation> {
  return federation({ dataDir: path.join(ctx.dir, 'hub'), mqttListen: true, mqttPort, ...(process.env.DBG && mqttPort ? { logger: jsonLogger('debug') } : {}) });
}

async function agent(ctx: Ctx, nodeId: string, extra: Partial<AgentOptions> = {}): Promise<Agent> {
  const a = await startAgent({
    nodeId, capabilities: ['basic-actions'], brokerUrl: ctx.fed!.mqttUrl!, heartbeatIntervalMs: 200,
    reconnectMinMs: 50, reconnectMaxMs: 200, logger: silentLogger, spoolDir: path.join(ctx.dir, `spool-${nodeId}`), ...extra,
  });
  ctx.agents.push(a);
  await withTimeout(new Promise<void>((resolve) => (a.connected ? resolve() : a.once('connect', () => resolve()))), 3000, `${nodeId} connects`);
  return a;
}

async function http<T>(fed: Federation, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T; etag: string | null }> {
  const init: RequestInit = body === undefined ? { method, headers } : { method, body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } };
  const res = await withTimeout(fetch(`${fed.api.url}${p}`, init), 3000, `${method} ${p}`);
  return { status: res.status, body: (await res.json()) as T, etag: res.headers.get('etag') };
}

const state = (fed: Federation, id: string) => http<ApiNodeState>(fed, 'GET', `/federation/nodes/${id}/state`);
const patch = (fed: Federation, id: string, body: unknown, headers: Record<string, string> = {}) => http<ApiNodeState>(fed, 'PATCH', `/federation/nodes/${id}/desired`, body, headers);

function inSync(fed: Federation, id: string, version: number, timeoutMs = 3000): Promise<ApiNodeState> {
  return waitFor(async () => {
    const s = (await state(fed, id)).body;
    return s.in_sync && s.version === version ? s : undefined;
  }, { timeoutMs, label: `${id} in sync at version ${version}` });
}

async function registered(fed: Federation, id: string): Promise<void> {
  await waitFor(() => fed.hubApi.node(id)?.status === 'active', { timeoutMs: 3000, label: `${id} registered` });
}

test('set desired state: the agent applies it, writes it to its spool dir, and the node is in sync', async (ctx) => {
  const fed = ctx.fed!;
  await agent(ctx, 'edge-1');
  await registered(fed, 'edge-1');
  const set = await patch(fed, 'edge-1', { interval_s: 5, model: { name: 'v3' } });
  assert.is(set.status, 200);
  assert.is(set.body.version, 1);
  assert.is(set.etag, '"1"');
  const s = await inSync(fed, 'edge-1', 1);
  assert.equal(s.reported, { interval_s: 5, model: { name: 'v3' } });
  assert.equal(s.delta, {});
  const file = JSON.parse(await fs.readFile(path.join(ctx.dir, 'spool-edge-1', DESIRED_STATE_FILE), 'utf8')) as { version: number; state: unknown; ts: number };
  assert.equal(file, { version: 1, state: { interval_s: 5, model: { name: 'v3' } }, ts: file.ts });
  // Both are retained on the broker (the embedded broker's retain gate keeps desired and valid reports).
  const watcher = await device(fed, 'watcher-1');
  try {
    const seen = await collector(watcher, 'edgefed/v1/nodes/edge-1/+');
    await waitFor(() => ['desired', 'reported'].every((f) => seen.some((m) => m.topic.endsWith(`/${f}`) && m.retain)), { timeoutMs: 2000, label: 'retained desired and reported' });
  } finally {
    await closeAll(watcher);
  }
  const node = (await http<ApiNode>(fed, 'GET', '/federation/nodes/edge-1')).body;
  assert.is(node.in_sync, true);
  assert.is(node.state_version, 1);
  // Conditional: a stale version changes nothing.
  const stale = await patch(fed, 'edge-1', { interval_s: 9 }, { 'if-match': '"0"' });
  assert.is(stale.status, 412);
  assert.is((await state(fed, 'edge-1')).body.desired.interval_s, 5);
  assert.is((await patch(fed, 'edge-1', { interval_s: 9 }, { 'if-match': '"1"' })).body.version, 2);
  await inSync(fed, 'edge-1', 2);
});

test('an agent stopped while desired state changes twice applies only the latest version', async (ctx) => {
  const fed = ctx.fed!;
  const first = await agent(ctx, 'edge-2');
  await registered(fed, 'edge-2');
  await patch(fed, 'edge-2', { a: 1 });
  await inSync(fed, 'edge-2', 1);
  await first.stop();
  await patch(fed, 'edge-2', { a: 2 });
  await patch(fed, 'edge-2', { a: 3, b: true });
  assert.not.ok((await state(fed, 'edge-2')).body.in_sync, 'out of sync while the node is away');
  const calls: Array<{ version: number; state: unknown; delta: unknown }> = [];
  const handler: DesiredHandler = (s, delta, c) => { calls.push({ version: c.version, state: s, delta }); return s; };
  const second = await agent(ctx, 'edge-2', { desiredHandler: handler });
  const s = await inSync(fed, 'edge-2', 3);
  assert.equal(calls, [{ version: 3, state: { a: 3, b: true }, delta: { a: 3, b: true } }]);
  assert.equal(s.reported, { a: 3, b: true });
  // Restarted with the same spool dir at the same version: nothing is applied again.
  await second.stop();
  await agent(ctx, 'edge-2', { desiredHandler: handler });
  await registered(fed, 'edge-2');
  await new Promise((r) => setTimeout(r, 300));
  assert.is(calls.length, 1, 'the spool dir remembers what was applied');
  assert.ok((await state(fed, 'edge-2')).body.in_sync);
});

test('a handler that throws: the error is reported, not retried in a loop, and the next version is applied', async (ctx) => {
  const fed = ctx.fed!;
  let calls = 0;
  let fail = true;
  const a = await agent(ctx, 'edge-3');
  a.onDesired((s) => {
    calls += 1;
    if (fail) throw new Error('model v4 not found');
    return s;
  });
  await registered(fed, 'edge-3');
  await patch(fed, 'edge-3', { model: 'v4' });
  const failed = await waitFor(async () => {
    const s = (await state(fed, 'edge-3')).body;
    return s.reported_error !== null ? s : undefined;
  }, { label: 'error reported' });
  assert.is(failed.reported_error, 'model v4 not found');
  assert.not.ok(failed.in_sync);
  assert.equal(failed.delta, { model: 'v4' });
  assert.is((await http<ApiNode>(fed, 'GET', '/federation/nodes/edge-3')).body.state_error, 'model v4 not found');
  // Metrics and the dashboard's feed count it out of sync.
  const metrics = await (await fetch(`${fed.api.url}/metrics`)).text();
  assert.match(metrics, /^edgefed_nodes_out_of_sync 1$/m);
  assert.equal(fleetCounts(fed.hubApi).state, { in_sync: 0, out_of_sync: 1 });
  const row = nodeView(fed.hubApi.node('edge-3')!, 0);
  assert.equal([row.in_sync, row.state_version, row.state_error], [false, 1, 'model v4 not found']);
  await new Promise((r) => setTimeout(r, 400));
  assert.is(calls, 1, 'not retried until a new version or a reconnect');
  fail = false;
  await patch(fed, 'edge-3', { model: 'v5' });
  const s = await inSync(fed, 'edge-3', 2);
  assert.is(s.reported_error, null);
  assert.is(calls, 2);
  assert.match(await (await fetch(`${fed.api.url}/metrics`)).text(), /^edgefed_nodes_out_of_sync 0$/m);
});

test('a restarted hub keeps desired and reported state and republishes desired to its new, empty broker', async (ctx) => {
  const fed = ctx.fed!;
  await agent(ctx, 'edge-4');
  await registered(fed, 'edge-4');
  await patch(fed, 'edge-4', { interval_s: 7 });
  await inSync(fed, 'edge-4', 1);
  const port = Number(new URL(fed.mqttUrl!).port);
  await fed.stop();
  ctx.fed = undefined;
  ctx.fed = await start(ctx, port);
  const restarted = ctx.fed;
  // The store kept it: version, desired and the report.
  const kept = (await state(restarted, 'edge-4')).body;
  assert.is(kept.version, 1);
  assert.equal(kept.desired, { interval_s: 7 });
  assert.equal(kept.reported, { interval_s: 7 });
  // The new embedded broker held nothing retained; the hub gave it the desired state back.
  await waitFor(() => restarted.hubApi.counters().state.republished >= 1, { timeoutMs: 3000, label: 'resync republished desired state' });
  const watcher = await device(restarted, 'watcher');
  try {
    const seen = await collector(watcher, 'edgefed/v1/nodes/+/desired');
    const msg = await waitFor(() => seen.find((m) => m.topic === 'edgefed/v1/nodes/edge-4/desired' && m.retain), { timeoutMs: 3000, label: 'retained desired back on the broker' })
      .catch((err: Error) => { throw new Error(`${err.message}; seen ${JSON.stringify(seen)}`); });
    assert.is((JSON.parse(msg.payload) as { version: number }).version, 1);
  } finally {
    await closeAll(watcher);
  }
  // The agent reconnects and is still in sync; a change after the restart reaches it.
  await patch(restarted, 'edge-4', { interval_s: 8 });
  await inSync(restarted, 'edge-4', 2, 5000);
});

test('HTTP refusals: unknown node 404, not an object 400, too large 413, bad If-Match 400; each counted', async (ctx) => {
  const fed = ctx.fed!;
  await agent(ctx, 'edge-5');
  await registered(fed, 'edge-5');
  assert.is((await patch(fed, 'nope', { a: 1 })).status, 404);
  assert.is((await state(fed, 'nope')).status, 404);
  const before = fed.hubApi.counters().refusals;
  assert.is((await patch(fed, 'edge-5', '[1,2]')).status, 400);
  assert.is((await patch(fed, 'edge-5', '{not json')).status, 400);
  assert.is((await patch(fed, 'edge-5', { big: 'x'.repeat(17_000) })).status, 413);
  let deep: Record<string, unknown> = { v: 1 };
  for (let i = 0; i < 10; i += 1) deep = { d: deep };
  const tooDeep = await patch(fed, 'edge-5', deep);
  assert.is(tooDeep.status, 413);
  assert.match(JSON.stringify(tooDeep.body), /deeper than 8/);
  assert.is((await patch(fed, 'edge-5', { a: 1 }, { 'if-match': 'soon' })).status, 400);
  const after = fed.hubApi.counters().refusals;
  const total = (r: Record<string, number | undefined>) => Object.values(r).reduce<number>((n, v) => n + (v ?? 0), 0);
  assert.is(total(after) - total(before), 5, 'every 400 and 413 is counted as a refusal');
  assert.is((await state(fed, 'edge-5')).body.version, 0, 'nothing changed');
});

test.run();
