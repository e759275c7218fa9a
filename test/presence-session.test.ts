/**
 * The `session` of a status (the CONNECT within a boot, like Sparkplug's
 * bdSeq): on a broker cluster the will of a dead broker node can arrive
 * after the node reconnected to another one, and must not mark it lost.
 * The agent numbers its connections and fails over along a broker list.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent } from '../agent/index.js';
import { createBroker } from '../broker/index.js';
import { Registry } from '../hub/registry.js';
import type { ApiHealth } from '../lib/api.js';
import { silentLogger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import type { NodeStatus } from '../lib/wire.js';
import { api, device, federation, registration } from './helpers/federation.js';
import { bounded } from './helpers/scope.js';
import { tcpClient } from './helpers/broker.js';
import { waitFor } from './helpers/time.js';

const t = topics();
const seen = (now = 1) => ({ now, live: true });

function registered(): Registry {
  const r = new Registry();
  r.applyRegistration({ node_id: 'a', capabilities: ['m'], boot_id: 'b1', ts: 1 }, seen());
  return r;
}

const status = (state: NodeStatus['state'], session?: number, bootId = 'b1'): NodeStatus =>
  ({ state, boot_id: bootId, ts: 2, ...(state === 'offline' ? { reason: 'lost' as const } : {}), ...(session !== undefined ? { session } : {}) });

test('registry: a will of an older session is ignored; one of the current session applies', () => {
  const r = registered();
  assert.is(r.applyStatus('a', status('online', 2), seen(2)), 'unchanged', 'already active');
  assert.is(r.applyStatus('a', status('offline', 1), seen(3)), 'older_session', 'the will of connection 1, after connection 2 came online');
  assert.is(r.get('a')?.status, 'active');
  assert.is(r.applyStatus('a', status('offline', 2), seen(4)), 'applied');
  assert.equal([r.get('a')?.status, r.get('a')?.status_reason], ['offline', 'lost']);
  assert.is(r.applyStatus('a', status('online', 3), seen(5)), 'applied');
  assert.is(r.get('a')?.session, 3);
});

test('registry: statuses without a session, and a new boot, behave as before', () => {
  const r = registered();
  r.applyStatus('a', status('online', 5), seen(2));
  assert.is(r.applyStatus('a', status('offline'), seen(3)), 'applied', 'a device that sends no session');
  r.applyRegistration({ node_id: 'a', capabilities: ['m'], boot_id: 'b2', ts: 4 }, seen(4));
  assert.is(r.get('a')?.session, null, 'a new boot starts its sessions afresh');
  assert.is(r.applyStatus('a', status('offline', 1, 'b2'), seen(5)), 'applied');
});

test('hub: a late will is counted as an older session and leaves the node active', bounded(async (scope) => {
  const fed = await federation();
  scope.defer(() => fed.stop());
  const dev = await device(fed, 'dev');
  scope.defer(() => dev.endAsync(true));
  await dev.publishAsync(t.registration('a'), JSON.stringify(registration('a', { boot_id: 'b1' })), { qos: 1, retain: true });
  await dev.publishAsync(t.status('a'), JSON.stringify({ ...status('online', 2), ts: Date.now() }), { qos: 1, retain: true });
  await dev.publishAsync(t.status('a'), JSON.stringify({ ...status('offline', 1), ts: Date.now() }), { qos: 1, retain: true });
  await waitFor(async () => (await api<ApiHealth>(fed, '/health')).body.counters.ignored.older_session === 1, { label: 'counted' });
  assert.is(fed.hubApi.node('a')?.status, 'active');
}));

test('hub with a will grace: a will followed by a newer online is ignored; one alone applies after the grace', bounded(async (scope) => {
  const fed = await federation({ hub: { willGraceMs: 300 } });
  scope.defer(() => fed.stop());
  const dev = await device(fed, 'dev');
  scope.defer(() => dev.endAsync(true));
  const pub = (topic: string, body: unknown) => dev.publishAsync(topic, JSON.stringify(body), { qos: 1, retain: true });
  await pub(t.registration('a'), registration('a', { boot_id: 'b1' }));
  await pub(t.status('a'), { ...status('online', 1), ts: Date.now() });
  // The cluster sends the old connection's will, then the node's online from its new broker node.
  await pub(t.status('a'), { ...status('offline', 1), ts: Date.now() });
  await pub(t.status('a'), { ...status('online', 2), ts: Date.now() });
  await new Promise((r) => setTimeout(r, 500));
  const h = (await api<ApiHealth>(fed, '/health')).body.counters;
  assert.equal([fed.hubApi.node('a')?.status, h.offline_transitions, h.ignored.older_session], ['active', 0, 1], 'never offline');
  await pub(t.status('a'), { ...status('offline', 2), ts: Date.now() });
  assert.is(fed.hubApi.node('a')?.status, 'active', 'the grace holds it');
  await waitFor(() => fed.hubApi.node('a')?.status === 'offline', { timeoutMs: 2000, label: 'applied after the grace' });
}));

test('agent: numbers its connections, and fails over along its broker list', bounded(async (scope) => {
  const a = await createBroker({ host: '127.0.0.1', port: 0 });
  scope.defer(() => a.close());
  const b = await createBroker({ host: '127.0.0.1', port: 0 });
  scope.defer(() => b.close());
  const onB: NodeStatus[] = [];
  const watch = await tcpClient(scope, b);
  watch.on('message', (_topic, payload) => onB.push(JSON.parse(payload.toString()) as NodeStatus));
  await watch.subscribeAsync(t.status('edge-1'), { qos: 1 });
  const agent = await startAgent({
    nodeId: 'edge-1', capabilities: ['m'], brokerUrl: `${a.url},${b.url}`, reconnectMinMs: 50, reconnectMaxMs: 100, logger: silentLogger,
  });
  scope.defer(() => agent.stop());
  await waitFor(() => agent.connected, { label: 'connected to a' });
  await a.close(); // broker node a dies
  // Under load, the first connection's `online` (session 1) may still wait for a's PUBACK when a
  // dies: mqtt.js sends it again to b after the reconnect, ahead of the new one. Which is why the
  // hub orders statuses by session; here, b must see the later connection's `online`.
  const online = await waitFor(() => onB.find((s) => s.state === 'online' && (s.session ?? 0) >= 2), { timeoutMs: 4000, label: 'online of a later session on b' });
  assert.is(online.boot_id, onB[0]?.boot_id, 'the same agent, not a restart');
}, { timeoutMs: 10_000 }));

test.run();
