/**
 * Two hubs on one PostgreSQL store and one broker: exactly one is active,
 * the standby serves reads from the store and points writes at the active
 * hub, and a stop or a lost lease hands over under a new epoch.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent } from '../agent/index.js';
import type { ApiHealth, ApiWpk } from '../lib/api.js';
import { silentLogger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import type { HubStatus } from '../lib/wire.js';
import type { Federation } from '../server/federation.js';
import { startBroker } from './helpers/broker.js';
import { CLI_ARGS } from './helpers/cli.js';
import { api, federation, post, registration } from './helpers/federation.js';
import { sharedPostgres } from './helpers/postgres.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

const run = promisify(execFile);
const t = topics();

async function hub(scope: Scope, brokerUrl: string, store: string, hubId: string): Promise<Federation> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `edgefed-ha-${hubId}-`));
  const fed = await federation({ brokerUrl, store, dataDir, ha: { hubId, ttlMs: 2000, renewMs: 400 } });
  scope.defer(async () => { await fed.stop(); await fs.rm(dataDir, { recursive: true, force: true }); });
  return fed;
}

const health = async (fed: Federation) => (await api<ApiHealth>(fed, '/health')).body;

/** The retained hub/status as a newcomer sees it. */
async function hubStatus(scope: Scope, url: string): Promise<HubStatus> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  scope.defer(() => c.endAsync(true));
  const got = new Promise<HubStatus>((resolve) => c.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as HubStatus)));
  await c.subscribeAsync(t.hubStatus(), { qos: 1 });
  return got;
}

test('one active, one standby: reads from the store, writes sent to the active hub', bounded(async (scope) => {
  const broker = await startBroker(scope);
  const store = await (await sharedPostgres()).createDatabase('ha');
  const a = await hub(scope, broker.url!, store, 'hub-a');
  const b = await hub(scope, broker.url!, store, 'hub-b');
  assert.is((await health(a)).ha?.role, 'active');
  // The active hub names its API in the lease at its first renewal after listening.
  const hb = await waitFor(async () => { const h = await health(b); return h.ha?.active?.api_url ? h : undefined; }, { timeoutMs: 3000, label: 'the standby knows the active hub' });
  assert.equal([hb.ha?.role, hb.ha?.active?.hub_id, hb.ha?.active?.api_url, hb.status], ['standby', 'hub-a', a.api.url, 'ok']);
  assert.equal(await hubStatus(scope, broker.url!), { ...(await hubStatus(scope, broker.url!)), state: 'online', hub_id: 'hub-a', epoch: 1 });

  const dev = await mqtt.connectAsync(broker.url!, { clientId: 'dev-1', reconnectPeriod: 0 });
  scope.defer(() => dev.endAsync(true));
  await dev.publishAsync(t.registration('dev-1'), JSON.stringify(registration('dev-1')), { qos: 1, retain: true });
  await waitFor(async () => (await api<{ nodes: unknown[] }>(b, '/federation/nodes')).body.nodes.length === 1, { timeoutMs: 6000, label: 'the standby lists the node from the store' });

  const refused = await fetch(`${b.api.url}/federation/wpk`, post({ capability: 'monitoring', action: 'echo' }));
  assert.is(refused.status, 503);
  assert.is(refused.headers.get('edgefed-active-hub'), a.api.url);
  assert.match(((await refused.json()) as { error: { code: string; message: string } }).error.message, /standby.*hub-a/);
  const cli = await run(process.execPath, [...CLI_ARGS, 'trigger', '--hub', b.api.url, '--capability', 'nobody', '--action', 'echo', '--json'], { timeout: 20_000 });
  const created = JSON.parse(cli.stdout) as { wpk_id: string };
  assert.ok(a.hubApi.wpks.get(created.wpk_id), 'the CLI followed the standby to the active hub');
}, { timeoutMs: 30_000 }));

test('a clean stop hands over at once, under a new epoch, with the open work', bounded(async (scope) => {
  const broker = await startBroker(scope);
  const store = await (await sharedPostgres()).createDatabase('ha');
  const a = await hub(scope, broker.url!, store, 'hub-a');
  const b = await hub(scope, broker.url!, store, 'hub-b');
  const created = await api<{ wpk_id: string }>(a, '/federation/wpk', post({ capability: 'nobody', action: 'echo' }));
  assert.is(created.status, 201);
  const t0 = Date.now();
  await a.stop();
  await waitFor(async () => (await health(b)).ha?.role === 'active', { timeoutMs: 3000, label: 'hub-b active' });
  assert.ok(Date.now() - t0 < 2000, `took over in ${Date.now() - t0} ms: a released lease is not waited out`);
  assert.equal((await health(b)).ha?.epoch, 2);
  const status = await hubStatus(scope, broker.url!);
  assert.equal([status.state, status.hub_id, status.epoch], ['online', 'hub-b', 2]);
  const wpk = await api<{ state: string }>(b, `/federation/wpk/${created.body.wpk_id}`);
  assert.equal([wpk.status, wpk.body.state], [200, 'pending'], 'the open WPK is the new active hub\'s');
}, { timeoutMs: 30_000 }));

test('a hub whose lease was taken steps down at its next renewal, and its writes are fenced', bounded(async (scope) => {
  const broker = await startBroker(scope);
  const store = await (await sharedPostgres()).createDatabase('ha');
  const a = await hub(scope, broker.url!, store, 'hub-a');
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: store });
  await c.connect();
  scope.defer(() => c.end());
  // What a successor does when this hub was paused past its lease: a new holder, a new epoch.
  await c.query("UPDATE edgefed_leases SET holder = 'hub-x', epoch = epoch + 1, expires_at = now() + interval '3 seconds'");
  await waitFor(async () => (await health(a)).ha?.role === 'standby', { timeoutMs: 2000, label: 'hub-a stood down' });
  const refused = await fetch(`${a.api.url}/federation/wpk`, post({ capability: 'monitoring', action: 'echo' }));
  assert.is(refused.status, 503, 'the former active hub takes no writes');
  const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM edgefed_wpks');
  assert.is(rows[0]?.n, '0');
  await waitFor(async () => (await health(a)).ha?.role === 'active', { timeoutMs: 6000, label: 'hub-a active again once hub-x\'s lease ran out' });
  assert.is((await health(a)).ha?.epoch, 3, 'under a new epoch');
}, { timeoutMs: 30_000 }));

test('a rollout goes on across a takeover: the new active hub keeps the pace, no agent runs it twice or is left out', bounded(async (scope) => {
  const broker = await startBroker(scope);
  const store = await (await sharedPostgres()).createDatabase('ha');
  const a = await hub(scope, broker.url!, store, 'hub-a');
  const b = await hub(scope, broker.url!, store, 'hub-b');
  const ids = ['r-1', 'r-2', 'r-3', 'r-4'];
  const ran: string[] = [];
  for (const id of ids) {
    const agent = await startAgent({
      nodeId: id, capabilities: ['firmware'], brokerUrl: broker.url!, heartbeatIntervalMs: 500, logger: silentLogger, reconnectMinMs: 50, reconnectMaxMs: 200,
      actions: { update: () => { ran.push(id); return { version: 2 }; } },
    });
    scope.defer(() => agent.stop());
  }
  await waitFor(() => ids.every((id) => a.hubApi.node(id)?.status === 'active'), { timeoutMs: 5000, label: 'fleet active on hub-a' });
  const created = await api<{ wpk_id: string }>(a, '/federation/wpk', post({ capability: 'firmware', action: 'update', mode: 'all', rollout: { max_per_minute: 40 } }));
  await waitFor(() => ran.length === 2, { timeoutMs: 5000, label: 'two dispatched by hub-a (1.5 s apart)' });
  await a.stop();
  await waitFor(async () => (await health(b)).ha?.role === 'active', { timeoutMs: 3000, label: 'hub-b active' });
  const done = await waitFor(async () => {
    const w = await api<ApiWpk>(b, `/federation/wpk/${created.body.wpk_id}`);
    return w.body.state === 'succeeded' ? w.body : undefined;
  }, { timeoutMs: 15_000, intervalMs: 100, label: 'the rollout ends on hub-b' });
  assert.equal(ran.slice().sort(), ids, 'each agent ran it exactly once');
  assert.equal(done.executions.map((e) => e.state), ['succeeded', 'succeeded', 'succeeded', 'succeeded']);
}, { timeoutMs: 40_000 }));

test('a late will of a predecessor does not stand: the active hub announces itself again', bounded(async (scope) => {
  const broker = await startBroker(scope);
  const store = await (await sharedPostgres()).createDatabase('ha');
  const a = await hub(scope, broker.url!, store, 'hub-a');
  const c = await mqtt.connectAsync(broker.url!, { reconnectPeriod: 0 });
  scope.defer(() => c.endAsync(true));
  // What the broker publishes for a hub killed with -9, a keepalive after its successor took over.
  await c.publishAsync(t.hubStatus(), JSON.stringify({ state: 'offline', reason: 'lost', boot_id: 'dead-hub', ts: Date.now() }), { qos: 1, retain: true });
  const status = await waitFor(async () => { const s = await hubStatus(scope, broker.url!); return s.state === 'online' ? s : undefined; }, { timeoutMs: 3000, label: 'online again' });
  assert.equal([status.boot_id, status.hub_id], [(await health(a)).boot_id, 'hub-a']);
}, { timeoutMs: 30_000 }));

test.run();
