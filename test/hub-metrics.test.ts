/**
 * GET /metrics as Prometheus scrapes it: the names and types are there, and
 * the values move with what happens in the federation (a node joins, beats,
 * is refused, runs a WPK, dies), including the broker's traffic and the
 * registry's writes.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Federation } from '../server/federation.js';
import { topics } from '../lib/topics.js';
import { device, federation, closeAll } from './helpers/federation.js';
import { scriptedNode } from './helpers/nodes.js';
import { securedFederation } from './helpers/secured.js';
import { parseExposition, sample, type Sample } from './helpers/prometheus.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';

const test = suite('hub: Prometheus metrics');
const t = topics();

async function scrape(fed: Federation, token?: string): Promise<{ status: number; type: string | null; samples: Sample[]; text: string }> {
  const res = await withTimeout(fetch(`${fed.api.url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {}), 3000, 'scrape');
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), samples: res.status === 200 ? parseExposition(text) : [], text };
}

async function withDataDir(scope: Scope): Promise<{ fed: Federation; dir: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-metrics-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const fed = await federation({ dataDir: dir });
  scope.defer(() => fed.stop());
  return { fed, dir };
}

test('the exposition: Prometheus text format, hub, process and event-loop metrics, HELP and TYPE lines', bounded(async (scope) => {
  const { fed } = await withDataDir(scope);
  const m = await scrape(fed);
  assert.is(m.status, 200);
  assert.match(m.type ?? '', /^text\/plain; version=0\.0\.4/);
  assert.is(sample(m.samples, 'edgefed_hub_info', { boot_id: fed.hub.bootId }), 1);
  await waitFor(() => fed.hub.connected);
  assert.is(sample((await scrape(fed)).samples, 'edgefed_hub_broker_connected'), 1);
  assert.ok((sample(m.samples, 'nodejs_eventloop_lag_seconds') ?? -1) >= 0, 'event-loop lag');
  assert.ok((sample(m.samples, 'process_resident_memory_bytes') ?? 0) > 0);
  assert.match(m.text, /# TYPE edgefed_wpk_dispatch_latency_seconds histogram/);
  assert.match(m.text, /# TYPE edgefed_registrations_total counter/);
  assert.match(m.text, /# TYPE edgefed_nodes gauge/);
  for (const status of ['active', 'stale', 'offline', 'deregistered']) assert.is(sample(m.samples, 'edgefed_nodes', { status }), 0, `no ${status} nodes yet`);
}));

test('values move with the federation: join, heartbeats, a refusal, a WPK, a death, traffic and registry writes', bounded(async (scope) => {
  const { fed } = await withDataDir(scope);
  const before = (await scrape(fed)).samples;
  const node = await scriptedNode(scope, fed, 'edge-m1', { capabilities: ['monitoring', 'gpu'] });
  for (let seq = 1; seq <= 3; seq++) await node.client.publishAsync(t.heartbeat('edge-m1'), JSON.stringify({ seq, ts: Date.now(), load: 0.5 }), { qos: 1 });
  await waitFor(() => fed.hub.counters().messages.heartbeat >= 3, { label: 'heartbeats admitted' });
  const bad = await device(fed, 'edge-bad');
  scope.defer(() => closeAll(bad));
  await bad.publishAsync(t.registration('edge-bad'), JSON.stringify({ node_id: 'edge-bad', capabilities: 'not-a-list' }), { qos: 1 });
  await waitFor(() => (fed.hub.counters().refusals.schema ?? 0) >= 1, { label: 'refusal counted' });

  const wpk = await fed.hub.wpks.create({ capability: 'gpu', action: 'echo' });
  await node.complete(await node.triggerOf(wpk.wpk_id));
  await waitFor(() => fed.hub.wpks.get(wpk.wpk_id)?.state === 'succeeded', { label: 'WPK succeeded' });
  await fed.hub.flush();

  const mid = (await scrape(fed)).samples;
  assert.is(sample(mid, 'edgefed_nodes', { status: 'active' }), 1);
  assert.is(sample(mid, 'edgefed_capability_nodes', { capability: 'gpu', status: 'active' }), 1);
  assert.is(sample(mid, 'edgefed_registrations_total'), (sample(before, 'edgefed_registrations_total') ?? 0) + 1);
  assert.is(sample(mid, 'edgefed_messages_received_total', { kind: 'heartbeat' }), 3);
  assert.is(sample(mid, 'edgefed_refusals_total', { reason: 'schema' }), 1);
  assert.is(sample(mid, 'edgefed_wpks', { state: 'succeeded' }), 1);
  assert.is(sample(mid, 'edgefed_wpks_created_total'), 1);
  assert.is(sample(mid, 'edgefed_wpks_finished_total', { state: 'succeeded' }), 1);
  assert.is(sample(mid, 'edgefed_wpk_triggers_total'), 1);
  assert.is(sample(mid, 'edgefed_wpk_dispatch_latency_seconds_count'), 1, 'one first answer observed');
  assert.ok((sample(mid, 'edgefed_wpk_dispatch_latency_seconds_sum') ?? -1) >= 0);
  assert.is(sample(mid, 'edgefed_wpk_duration_seconds_count', { state: 'succeeded' }), 1);
  assert.ok((sample(mid, 'edgefed_registry_flush_duration_seconds_count') ?? 0) >= 1, 'registry writes observed');
  assert.ok((sample(mid, 'edgefed_registry_size_bytes') ?? 0) > 100, 'registry.json size on disk');
  assert.ok((sample(mid, 'edgefed_broker_clients') ?? 0) >= 3, 'hub, node and the bad device are connected');
  for (const direction of ['in', 'out']) {
    assert.ok((sample(mid, 'edgefed_broker_messages_total', { direction }) ?? 0) > (sample(before, 'edgefed_broker_messages_total', { direction }) ?? 0), `messages ${direction} moved`);
    assert.ok((sample(mid, 'edgefed_broker_bytes_total', { direction }) ?? 0) > (sample(before, 'edgefed_broker_bytes_total', { direction }) ?? 0), `bytes ${direction} moved`);
  }

  node.kill();
  await waitFor(() => fed.hub.node('edge-m1')?.status === 'offline', { label: 'edge-m1 offline' });
  const after = (await scrape(fed)).samples;
  assert.is(sample(after, 'edgefed_nodes', { status: 'offline' }), 1);
  assert.is(sample(after, 'edgefed_nodes', { status: 'active' }), 0);
  assert.is(sample(after, 'edgefed_node_transitions_total', { to: 'offline' }), 1);
}, { timeoutMs: 10_000 }));

test('with auth on, /metrics wants a bearer token like the rest of the API; an operator token reads it', bounded(async (scope) => {
  const { fed, token: mint } = await securedFederation(scope);
  const anon = await scrape(fed);
  assert.is(anon.status, 401);
  assert.match(anon.text, /Bearer/);
  const token = await mint({ role: 'operator' });
  const m = await scrape(fed, token);
  assert.is(m.status, 200);
  assert.is(sample(m.samples, 'edgefed_hub_info', { boot_id: fed.hub.bootId }), 1);
  assert.ok((sample(m.samples, 'edgefed_broker_auth_connects_total') ?? 0) >= 1, 'the hub\'s own session was accepted');
  assert.is(sample(m.samples, 'edgefed_broker_auth_refusals_total', { kind: 'connect', reason: 'no_credentials' }), undefined, 'no refusal yet');
  const anonymous = fed.broker!.connectInMemory({ clientId: 'edge-anon', reconnectPeriod: 0 });
  scope.defer(() => closeAll(anonymous));
  await withTimeout(new Promise((resolve) => anonymous.once('error', resolve)), 3000, 'CONNACK refusal');
  const refused = (await scrape(fed, token)).samples;
  assert.is(sample(refused, 'edgefed_broker_auth_refusals_total', { kind: 'connect', reason: 'no_credentials' }), 1);
  // HEAD (uptime probes, `curl -I`): the same answer without a body, and the same token rule.
  const headAnon = await fetch(`${fed.api.url}/metrics`, { method: 'HEAD' });
  assert.is(headAnon.status, 401);
  const head = await fetch(`${fed.api.url}/metrics`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
  assert.is(head.status, 200);
  assert.match(head.headers.get('content-type') ?? '', /^text\/plain/);
  assert.ok(Number(head.headers.get('content-length')) > 1000, 'the length of the body a GET would get');
  assert.is(await head.text(), '');
  const stream = await withTimeout(fetch(`${fed.api.url}/federation/events`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } }), 3000, 'HEAD of the event stream answers');
  assert.is(stream.status, 200);
  assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
}));

test.run();
