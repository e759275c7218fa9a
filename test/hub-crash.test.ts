/** kill -9 of a real hub process: the registry file stays valid and complete, the next hub takes over at once. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { topics } from '../lib/topics.js';
import { closeAll, registration } from './helpers/federation.js';
import { kill9, spawnHub, stopGracefully, type HubProcess } from './helpers/process.js';
import { waitFor, withTimeout } from './helpers/time.js';

interface Ctx { dir: string; procs: HubProcess[]; clients: MqttClient[] }
const test = suite<Ctx>('hub: crash safety (kill -9)', { dir: '', procs: [], clients: [] });
const t = topics();
test.before.each(async (ctx) => { ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-crash-')); ctx.procs = []; ctx.clients = []; });
test.after.each(async (ctx) => {
  await closeAll(...ctx.clients);
  for (const p of ctx.procs) await stopGracefully(p).catch(() => p.child.kill('SIGKILL'));
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

async function connect(ctx: Ctx, url: string, clientId: string): Promise<MqttClient> {
  const c = await withTimeout(mqtt.connectAsync(url, { clientId, reconnectPeriod: 0 }), 5000, 'connect');
  ctx.clients.push(c);
  return c;
}

async function nodesOf(httpUrl: string): Promise<Array<{ node_id: string; status: string }>> {
  const res = await fetch(`${httpUrl}/federation/nodes`);
  return ((await res.json()) as { nodes: Array<{ node_id: string; status: string }> }).nodes;
}

test('kill -9 then restart: registry intact, nodes stale, retained registrations visible again', (ctx) => withTimeout((async () => {
  const hub1 = await spawnHub(['--data-dir', ctx.dir]);
  ctx.procs.push(hub1);
  const dev = await connect(ctx, hub1.mqttUrl, 'fleet-sim');
  const ids = Array.from({ length: 20 }, (_, i) => `node-${i}`);
  for (const id of ids) await dev.publishAsync(t.registration(id), JSON.stringify(registration(id)), { qos: 1, retain: true });
  await waitFor(async () => (await nodesOf(hub1.httpUrl)).length === 20, { timeoutMs: 3000, label: '20 nodes' });
  await waitFor(async () => {
    const file = JSON.parse(await fs.readFile(path.join(ctx.dir, 'registry.json'), 'utf8'));
    return Object.keys(file.nodes).length === 20;
  }, { timeoutMs: 3000, label: 'flushed to disk' });
  await closeAll(dev);
  ctx.clients = [];
  await kill9(hub1);
  ctx.procs = [];

  const hub2 = await spawnHub(['--data-dir', ctx.dir]); // takes over the dead hub's lock at once
  ctx.procs.push(hub2);
  const nodes = await nodesOf(hub2.httpUrl);
  assert.is(nodes.length, 20);
  assert.ok(nodes.every((n) => n.status === 'stale'), 'restored nodes are stale until they re-announce');
  const sub = await connect(ctx, hub2.mqttUrl, 'operator');
  const seen = new Set<string>();
  sub.on('message', (_topic, payload) => seen.add(JSON.parse(payload.toString()).node_id));
  await sub.subscribeAsync(t.allNodes('registration'), { qos: 1 });
  await waitFor(() => seen.size === 20, { timeoutMs: 5000, label: 'every registration retained again' });
})(), 40_000, 'kill -9 restart'));

test('the registry file is valid JSON after kill -9 during a write storm', (ctx) => withTimeout((async () => {
  for (let round = 0; round < 3; round += 1) {
    const hub = await spawnHub(['--data-dir', ctx.dir]);
    ctx.procs = [hub];
    const dev = await connect(ctx, hub.mqttUrl, `storm-${round}`);
    let stop = false;
    const storm = (async () => {
      for (let i = 0; !stop && i < 20_000; i += 1) {
        const id = `storm-${i % 500}`;
        dev.publish(t.registration(id), JSON.stringify(registration(id, { ts: Date.now() + i, labels: { round: String(round), i: String(i) } })), { qos: 0, retain: true });
        if (i % 200 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    // Killed mid-storm, but after the first flush: a registry that was never written proves nothing (and a loaded box may take > 300 ms to flush).
    await waitFor(() => fs.access(path.join(ctx.dir, 'registry.json')).then(() => true), { timeoutMs: 10_000, label: `round ${round}: first registry flush` });
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 500)));
    await kill9(hub);
    stop = true;
    await storm;
    await closeAll(dev);
    ctx.clients = [];
    ctx.procs = [];
    const text = await fs.readFile(path.join(ctx.dir, 'registry.json'), 'utf8');
    const parsed = JSON.parse(text) as { nodes: Record<string, unknown> };
    assert.type(parsed.nodes, 'object', `round ${round}: a complete registry`);
  }
})(), 60_000, 'write storm'));

test.run();
