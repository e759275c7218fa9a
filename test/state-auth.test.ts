/**
 * Desired state with `auth: jwt` (issue 16): changing it needs an operator
 * token with `state:write` (or the hub's); an agent reads only its own state,
 * may publish only its own `reported`, and its `desired` is the hub's alone.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent } from '../agent/index.js';
import type { ApiNodeState } from '../lib/api.js';
import { silentLogger } from '../lib/log.js';
import { bounded, type Scope } from './helpers/scope.js';
import { securedFederation, type Secured } from './helpers/secured.js';
import { sleep, waitFor, withTimeout } from './helpers/time.js';

const test = suite('desired state: auth');

async function http<T>(ctx: Secured, method: string, p: string, token?: string, body?: unknown): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await withTimeout(fetch(`${ctx.fed.api.url}${p}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }), 3000, `${method} ${p}`);
  return { status: res.status, body: (await res.json()) as T };
}

async function agent(scope: Scope, ctx: Secured, nodeId: string) {
  const token = await ctx.token({ role: 'agent', subject: nodeId, caps: ['basic-actions'] });
  const a = await startAgent({
    nodeId, capabilities: ['basic-actions'], connect: (o) => ctx.fed.broker!.connectInMemory(o), username: nodeId, password: token,
    heartbeatIntervalMs: 200, reconnectMinMs: 50, reconnectMaxMs: 100, logger: silentLogger,
  });
  scope.defer(() => a.stop());
  await waitFor(() => ctx.fed.hub.node(nodeId)?.status === 'active', { timeoutMs: 3000, label: `${nodeId} registered` });
  return { a, token };
}

test('HTTP: state:write sets desired state; wpk:write and read-only operators get 403; agents read only their own', bounded(async (scope) => {
  const ctx = await securedFederation(scope);
  const { token: agentToken } = await agent(scope, ctx, 'edge-1');
  await agent(scope, ctx, 'edge-2');
  const reader = await ctx.token({ role: 'operator' });
  const wpkWriter = await ctx.token({ role: 'operator', scopes: ['wpk:write'] });
  const stateWriter = await ctx.token({ role: 'operator', scopes: ['state:write'] });
  const denied = await http<{ error: { message: string } }>(ctx, 'PATCH', '/federation/nodes/edge-1/desired', wpkWriter, { a: 1 });
  assert.is(denied.status, 403);
  assert.match(denied.body.error.message, /state:write/);
  assert.is((await http(ctx, 'PATCH', '/federation/nodes/edge-1/desired', reader, { a: 1 })).status, 403);
  assert.is((await http(ctx, 'PATCH', '/federation/nodes/edge-1/desired', agentToken, { a: 1 })).status, 403, 'a node cannot set its own desired state');
  assert.is((await http(ctx, 'PATCH', '/federation/nodes/edge-1/desired', undefined, { a: 1 })).status, 401);
  assert.is(ctx.fed.hub.nodeState('edge-1')?.version, 0, 'nothing changed');
  const set = await http<ApiNodeState>(ctx, 'PATCH', '/federation/nodes/edge-1/desired', stateWriter, { a: 1 });
  assert.is(set.status, 200);
  assert.is(set.body.version, 1);
  await waitFor(async () => (await http<ApiNodeState>(ctx, 'GET', '/federation/nodes/edge-1/state', reader)).body.in_sync, { timeoutMs: 3000, label: 'edge-1 in sync' });
  assert.is((await http(ctx, 'GET', '/federation/nodes/edge-1/state', agentToken)).status, 200, 'an agent reads its own state');
  // With auth on the hub is an MQTT client of its broker, behind the ACL and the retain gate: its desired state stays retained.
  const opToken = await ctx.token({ role: 'operator', subject: 'watcher' });
  const watcher = ctx.fed.broker!.connectInMemory({ clientId: 'watcher', username: 'watcher', password: opToken, reconnectPeriod: 0 });
  scope.defer(() => watcher.endAsync(true).catch(() => undefined));
  const retained = new Promise<boolean>((resolve) => watcher.on('message', (_t, _p, packet) => resolve(packet.retain)));
  await withTimeout(new Promise<void>((resolve, reject) => { watcher.once('connect', () => resolve()); watcher.once('error', reject); }), 3000, 'watcher connects');
  await watcher.subscribeAsync('edgefed/v1/nodes/edge-1/desired', { qos: 1 });
  assert.ok(await withTimeout(retained, 3000, 'retained desired state'), 'delivered as retained');
  assert.is((await http(ctx, 'GET', '/federation/nodes/edge-2/state', agentToken)).status, 403, 'but not another node\'s');
}, { timeoutMs: 10_000 }));

test('MQTT: a node may not publish desired state (its own or another\'s) nor another node\'s report; it reads only its own desired', bounded(async (scope) => {
  const ctx = await securedFederation(scope);
  await agent(scope, ctx, 'edge-2');
  ctx.fed.hub.patchDesired('edge-2', { secret: 'edge-2 only' });
  const token = await ctx.token({ role: 'agent', subject: 'edge-1', caps: ['basic-actions'] });
  const rogue = ctx.fed.broker!.connectInMemory({ clientId: 'edge-1', username: 'edge-1', password: token, reconnectPeriod: 0 });
  scope.defer(() => rogue.endAsync(true).catch(() => undefined));
  await withTimeout(new Promise<void>((resolve, reject) => { rogue.once('connect', () => resolve()); rogue.once('error', reject); }), 3000, 'rogue connects');
  const refused = await rogue.subscribeAsync('edgefed/v1/nodes/edge-2/desired', { qos: 1 }).then((g) => g[0]?.qos === 128, () => true);
  assert.ok(refused, 'another node\'s desired state is not granted');
  const before = ctx.fed.authStats!.publishRefusals.own_desired ?? 0;
  rogue.publish('edgefed/v1/nodes/edge-1/desired', JSON.stringify({ version: 99, state: { a: 'forged' }, ts: Date.now() }), { qos: 1, retain: true });
  await waitFor(() => (ctx.fed.authStats!.publishRefusals.own_desired ?? 0) > before, { timeoutMs: 3000, label: 'own_desired refused' });
  await sleep(100);
  assert.is(ctx.fed.hub.counters().state.republished, 0, 'the hub never saw a foreign desired state');
  assert.is(ctx.fed.hub.nodeState('edge-2')?.version, 1);
}, { timeoutMs: 10_000 }));

test.run();
