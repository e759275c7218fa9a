/**
 * A fleet on a broker cluster: three NATS servers (Debian's nats-server)
 * clustered with JetStream and their MQTT listeners on, started here on
 * 127.0.0.1. The hub is on node 1; six real agents are spread over nodes 2
 * and 3, each with the list of nodes (`--broker a,b`). Node 2 is killed
 * with -9 while work runs: its agents move to node 3, keep beating, and
 * every WPK ends succeeded on attempt 1, run once. NATS publishes no will
 * for the clients of a killed server, which this test also shows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiHealth, ApiNodeList } from '../../lib/api.js';
import { freePort } from '../helpers/ports.js';
import { waitFor, withTimeout } from '../helpers/time.js';
import { spawnHub, stopHub, tempDir, type HubProcess } from './helpers.js';

const FLEET = fileURLToPath(new URL('./fleet/ha-agents.ts', import.meta.url));
const BEAT_MS = 15_000;

interface NatsNode { name: string; mqttPort: number; child: ChildProcess }
interface Ctx { dir: string; nats: NatsNode[]; fleets: ChildProcess[]; hub?: HubProcess }
const test = suite<Ctx>('interop: a fleet on a 3-node NATS cluster', { dir: '', nats: [], fleets: [] });
test.before.each(async (ctx) => { ctx.dir = await tempDir('edgefed-nats-'); ctx.nats = []; ctx.fleets = []; ctx.hub = undefined; });
test.after.each(async (ctx) => {
  for (const f of ctx.fleets) f.kill('SIGKILL');
  await stopHub(ctx.hub);
  for (const n of ctx.nats) n.child.kill('SIGKILL');
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

const natsBin = async () => (await fs.access('/usr/sbin/nats-server').then(() => '/usr/sbin/nats-server', () => 'nats-server'));

async function startCluster(ctx: Ctx): Promise<NatsNode[]> {
  const ports = await Promise.all(Array.from({ length: 9 }, () => freePort()));
  const routes = [0, 1, 2].map((i) => `nats://127.0.0.1:${ports[3 + i]}`);
  const bin = await natsBin();
  for (const i of [0, 1, 2]) {
    const name = `n${i + 1}`;
    const conf = path.join(ctx.dir, `${name}.conf`);
    await fs.writeFile(conf, [
      `server_name: ${name}`,
      `listen: 127.0.0.1:${ports[i]}`,
      `jetstream { store_dir: "${path.join(ctx.dir, `js-${name}`)}" }`,
      `cluster { name: edge, listen: 127.0.0.1:${ports[3 + i]}, routes: [${routes.join(', ')}] }`,
      `mqtt { listen: 127.0.0.1:${ports[6 + i]} }`,
    ].join('\n'));
    const child = spawn(bin, ['-c', conf], { stdio: 'ignore' });
    ctx.nats.push({ name, mqttPort: ports[6 + i]!, child });
  }
  for (const n of ctx.nats) {
    await waitFor(() => new Promise<boolean>((resolve) => {
      const s = net.connect(n.mqttPort, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    }), { timeoutMs: 15_000, intervalMs: 100, label: `${n.name} MQTT listening` });
  }
  // JetStream elects its leaders after the routes are up: a retained message must cross the cluster.
  await waitFor(async () => {
    const pub = await mqtt.connectAsync(url(ctx.nats[0]!), { reconnectPeriod: 0, connectTimeout: 2000 }).catch(() => undefined);
    if (!pub) return false;
    try {
      await withTimeout(pub.publishAsync('edgefed-probe', 'x', { qos: 1, retain: true }), 2000, 'probe publish');
      const sub = await mqtt.connectAsync(url(ctx.nats[2]!), { reconnectPeriod: 0, connectTimeout: 2000 });
      try {
        const got = new Promise<boolean>((resolve) => sub.once('message', () => resolve(true)));
        await sub.subscribeAsync('edgefed-probe', { qos: 1 });
        return await withTimeout(got, 2000, 'probe').catch(() => false);
      } finally { await sub.endAsync(true); }
    } catch { return false; } finally { await pub.endAsync(true); }
  }, { timeoutMs: 30_000, intervalMs: 500, label: 'cluster ready (JetStream)' });
  return ctx.nats;
}

const url = (n: NatsNode) => `mqtt://127.0.0.1:${n.mqttPort}`;

async function json<T>(hub: HubProcess, p: string, init?: RequestInit): Promise<T> {
  const res = await withTimeout(fetch(`${hub.httpUrl}${p}`, init), 5000, p);
  return (await res.json()) as T;
}

test('a broker node dies: its agents move on, stay active, and no WPK fails over', async (ctx) => withTimeout((async () => {
  const [n1, n2, n3] = await startCluster(ctx);
  // Killing a NATS node disrupts the cluster for 15-25 s: clients (of other nodes too) lose their connection
  // and cannot reconnect until JetStream recovers, and NATS may publish their wills. The hub holds
  // session-carrying wills for 30 s: the agents' newer sessions come online before that and make them moot.
  const hub = await spawnHub(['--broker-url', `${url(n1!)},${url(n3!)}`, '--data-dir', path.join(ctx.dir, 'hub'), '--will-grace', '30s']);
  ctx.hub = hub;
  const runs = path.join(ctx.dir, 'runs.txt');
  await fs.writeFile(runs, '');
  const fleet = (brokers: string, prefix: string) => {
    // Heartbeats every 15 s: NATS 2.9 takes 15-25 s before a killed node's clients can connect elsewhere
    // (docs/operations.md#nats), and 3 missed beats (45 s) must not declare them lost meanwhile.
    const env = { ...process.env, BROKER: brokers, AGENTS: '3', RUNS_FILE: runs, PREFIX: prefix, HEARTBEAT_MS: String(BEAT_MS), RECONNECT_MAX_MS: '2000' };
    const f = spawn(process.execPath, ['--import', 'tsx', FLEET], { env, stdio: 'ignore' });
    ctx.fleets.push(f);
  };
  fleet(`${url(n2!)},${url(n3!)}`, 'on2'); // these start on node 2
  fleet(`${url(n3!)},${url(n2!)}`, 'on3'); // these on node 3
  await waitFor(async () => (await json<ApiNodeList>(hub, '/federation/nodes?status=active')).count === 6, { timeoutMs: 30_000, intervalMs: 200, label: '6 agents active' });

  const ids: string[] = [];
  for (let i = 0; i < 6; i += 1) {
    ids.push((await json<{ wpk_id: string }>(hub, '/federation/wpk', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ capability: 'work', action: 'work', params: { ms: 4000 }, timeout_ms: 60_000 }),
    })).wpk_id);
  }
  await waitFor(async () => (await Promise.all(ids.map((id) => json<{ state: string }>(hub, `/federation/wpk/${id}`)))).every((w) => w.state === 'running'),
    { timeoutMs: 10_000, intervalMs: 100, label: 'work running on both nodes' });
  const before = (await json<ApiHealth>(hub, '/health')).counters;

  // A client of node 2 with a will, to see what NATS does with it.
  const watcher = await mqtt.connectAsync(url(n3!), { reconnectPeriod: 0 });
  const wills: string[] = [];
  watcher.on('message', (topic) => wills.push(topic));
  await watcher.subscribeAsync('probe/will/#', { qos: 1 });
  const doomed = await mqtt.connectAsync(url(n2!), { reconnectPeriod: 0, keepalive: 5, will: { topic: 'probe/will/x', payload: Buffer.from('gone'), qos: 1, retain: false } });
  doomed.on('error', () => undefined);

  const killedAt = Date.now();
  n2!.child.kill('SIGKILL');
  // The agents of node 2 reconnect to node 3 and announce at once (registration, online): seen alive again.
  await waitFor(async () => {
    const nodes = (await json<ApiNodeList>(hub, '/federation/nodes')).nodes;
    return nodes.length === 6 && nodes.every((n) => n.status === 'active' && (n.last_seen ?? 0) > killedAt + 500);
  }, { timeoutMs: 2 * BEAT_MS + 5000, intervalMs: 100, label: 'every agent active again after the kill' }).catch(async (err: Error) => {
    const nodes = (await json<ApiNodeList>(hub, '/federation/nodes')).nodes.map((n) => `${n.node_id} ${n.status} ${(n.last_seen ?? 0) - killedAt}`);
    throw new Error(`${err.message}: ${nodes.join('; ')}`);
  });
  const backMs = Date.now() - killedAt;
  process.stdout.write(`  (agents of the killed node seen again ${backMs} ms after the kill)\n`);
  assert.ok(backMs < 2 * BEAT_MS, `back within two heartbeat intervals: ${backMs} ms`);

  await waitFor(async () => (await Promise.all(ids.map((id) => json<{ state: string }>(hub, `/federation/wpk/${id}`)))).every((w) => w.state === 'succeeded'),
    { timeoutMs: 30_000, intervalMs: 250, label: 'all WPKs succeeded' }).catch(async (err: Error) => {
    const ws = await Promise.all(ids.map((id) => json<{ state: string; executions: Array<{ node_id: string; state: string }> }>(hub, `/federation/wpk/${id}`)));
    throw new Error(`${err.message}: ${ws.map((w) => `${w.state}[${w.executions.map((e) => `${e.node_id}:${e.state}`).join(',')}]`).join('; ')}`);
  });
  for (const id of ids) {
    const w = await json<{ attempt: number; executions: unknown[] }>(hub, `/federation/wpk/${id}`);
    assert.equal([w.attempt, w.executions.length], [1, 1], `${id}: no failover`);
  }
  const lines = (await fs.readFile(runs, 'utf8')).trim().split('\n');
  assert.is(new Set(lines.map((l) => l.split(' ')[0])).size, lines.length, 'each WPK ran once');
  const after = (await json<ApiHealth>(hub, '/health')).counters;
  process.stdout.write(`  (older-session statuses ignored: ${after.ignored.older_session - before.ignored.older_session})\n`);
  const offline = hub.lines.filter((l) => /"to":"offline"|offline/.test(l) && /node_id/.test(l)).slice(-6).join('\n');
  assert.is(after.offline_transitions - before.offline_transitions, 0, `no agent was marked offline:\n${offline}`);
  await new Promise((r) => setTimeout(r, 1000));
  process.stdout.write(`  (wills of the killed node's probe client seen: ${wills.length})\n`);
  await watcher.endAsync(true);
  await doomed.endAsync(true);
})(), 150_000, 'nats cluster'));

test.run();
