/** The registry survives a hub restart on the same data dir, and the broker is put back in line. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import mqtt from 'mqtt';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker } from '../broker/index.js';
import type { Federation } from '../server/federation.js';
import { createHub } from '../hub/index.js';
import { silentLogger } from '../lib/log.js';
import { closeAll, collector, device, federation, registration } from './helpers/federation.js';
import { retainedNow } from './helpers/broker.js';
import { capturingLogger, linesWith, type LogLine } from './helpers/logs.js';
import { waitFor, withTimeout } from './helpers/time.js';

interface Ctx { feds: Federation[]; dir: string }
const test = suite<Ctx>('hub: restart and data dir', { feds: [], dir: '' });
test.before.each(async (ctx) => { ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-restart-')); ctx.feds = []; });
test.after.each(async (ctx) => {
  for (const f of ctx.feds) await f.stop();
  await fs.rm(ctx.dir, { recursive: true, force: true });
});
const T = (label: string, fn: (ctx: Ctx) => Promise<void>) => test(label, (ctx) => withTimeout(fn(ctx), 10_000, label));

T('after a restart with the broker store lost: registry intact, nodes stale, retained registrations back, rebirth asked', async (ctx) => {
  const first = await federation({ dataDir: ctx.dir });
  ctx.feds.push(first);
  const dev = await device(first, 'n-setup');
  for (const id of ['alive-1', 'alive-2', 'gone']) {
    await dev.publishAsync(first.hub.topics.registration(id), JSON.stringify(registration(id)), { qos: 1, retain: true });
  }
  await dev.publishAsync(first.hub.topics.status('alive-2'), JSON.stringify({ state: 'offline', reason: 'shutdown', boot_id: 'boot-alive-2', ts: Date.now() }), { qos: 1, retain: true });
  await waitFor(() => first.hub.node('alive-2')?.status === 'offline' && first.hub.nodes().length === 3);
  await dev.publishAsync(first.hub.topics.registration('gone'), '', { qos: 1, retain: true });
  await waitFor(() => first.hub.node('gone')?.status === 'deregistered');
  const registeredAt = first.hub.node('alive-1')!.registered_at;
  await closeAll(dev);
  await first.stop();
  ctx.feds = [];

  const onDisk = JSON.parse(await fs.readFile(path.join(ctx.dir, 'registry.json'), 'utf8'));
  assert.equal(Object.keys(onDisk.nodes).sort(), ['alive-1', 'alive-2', 'gone']);

  const second = await federation({ dataDir: ctx.dir }); // a new embedded broker: its retained store is empty
  ctx.feds.push(second);
  assert.is(second.hub.node('alive-1')?.status, 'stale', 'no liveness claimed before the node re-announces');
  assert.is(second.hub.node('alive-1')?.registered_at, registeredAt);
  assert.is(second.hub.node('alive-2')?.status, 'offline');
  assert.is(second.hub.node('gone')?.status, 'deregistered');

  const op = await device(second, 'operator-late');
  const commands = await collector(op, `${second.hub.topics.root}/nodes/+/commands`);
  await waitFor(() => commands.length >= 2, { label: 'rebirth commands' });
  assert.equal(commands.map((c) => c.topic).sort(), [second.hub.topics.commands('alive-1'), second.hub.topics.commands('alive-2')]);
  const retained = await collector(op, second.hub.topics.allNodes('registration'));
  await waitFor(() => retained.length >= 2, { label: 'retained registrations' });
  assert.equal(retained.map((m) => JSON.parse(m.payload).node_id).sort(), ['alive-1', 'alive-2']);
  assert.is(second.hub.node('alive-1')?.status, 'stale', 'the republished copy does not make the node active');

  // The node answers the rebirth: active again, same registration id.
  const node = await device(second, 'alive-1');
  await node.publishAsync(second.hub.topics.registration('alive-1'), JSON.stringify(registration('alive-1', { ts: Date.now() + 1 })), { qos: 1, retain: true });
  await waitFor(() => second.hub.node('alive-1')?.status === 'active');
  assert.is(second.hub.node('alive-1')?.id, onDisk.nodes['alive-1'].id);
  await closeAll(op, node);
});

T('two live hubs never share a data dir', async (ctx) => {
  ctx.feds.push(await federation({ dataDir: ctx.dir }));
  try {
    ctx.feds.push(await federation({ dataDir: ctx.dir }));
    assert.unreachable('second hub started');
  } catch (err) {
    assert.match((err as Error).message, /EDGEFED_ERR_DATA_DIR_LOCKED/);
  }
});

T('the lock of a dead hub is taken over at once', async (ctx) => {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  const deadPid = Number(child.stdout.toString());
  await fs.writeFile(path.join(ctx.dir, 'hub.lock'), JSON.stringify({ pid: deadPid, hostname: os.hostname(), proc_start: '1', acquired_at: 1 }));
  const fed = await federation({ dataDir: ctx.dir });
  ctx.feds.push(fed);
  assert.is(JSON.parse(await fs.readFile(path.join(ctx.dir, 'hub.lock'), 'utf8')).pid, process.pid);
});

T('a registry file that is not JSON stops the hub with an actionable error, untouched', async (ctx) => {
  const file = path.join(ctx.dir, 'registry.json');
  await fs.writeFile(file, '{"nodes": {');
  try {
    ctx.feds.push(await federation({ dataDir: ctx.dir }));
    assert.unreachable('hub started on a corrupt registry');
  } catch (err) {
    assert.match((err as Error).message, /EDGEFED_ERR_REGISTRY_UNREADABLE/);
  }
  assert.is(await fs.readFile(file, 'utf8'), '{"nodes": {');
  await fs.rm(file);
  ctx.feds.push(await federation({ dataDir: ctx.dir })); // and the lock was released
});

T('a hub restarted against a broker that kept its store re-publishes nothing (a node deregistered meanwhile stays gone)', async (ctx) => {
  const broker = await createBroker({ listen: false });
  const lines: LogLine[] = [];
  const hubOf = () => createHub({ connect: (o) => broker.connectInMemory(o), dataDir: ctx.dir, logger: capturingLogger(lines), resync: { settleMs: 100, maxWaitMs: 1000 } });
  try {
    const first = hubOf();
    await first.start();
    const dev = broker.connectInMemory({ clientId: 'dev', reconnectPeriod: 0 });
    await dev.publishAsync(first.topics.registration('x'), JSON.stringify(registration('x')), { qos: 1, retain: true });
    await waitFor(() => first.node('x')?.status === 'active');
    await first.stop();
    await dev.publishAsync(first.topics.registration('x'), '', { qos: 1, retain: true }); // deregistered while the hub is away

    lines.length = 0; // the first hub's lines
    const second = hubOf();
    await second.start();
    assert.is(second.node('x')?.status, 'stale', 'still registered in the restored registry');
    await waitFor(() => linesWith(lines, 'broker resynchronised with the registry').length > 0, { label: 'resync done' });
    const seen = await retainedNow(dev, second.topics.registration('x'));
    assert.is(seen.length, 0, 'not brought back on the broker');
    assert.is(second.node('x')?.status, 'deregistered', 'the registry follows the broker');
    await second.stop();
    await closeAll(dev);
  } finally {
    await broker.close();
  }
});

T('stop() during start() settles both, leaves no lock and nothing running', async (ctx) => {
  const hub = createHub({
    connect: (o) => mqtt.connect('mqtt://127.0.0.1:9', { ...o, reconnectPeriod: 50 }), // nothing listens there
    dataDir: ctx.dir,
    logger: silentLogger,
  });
  const starting = hub.start();
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  await hub.stop();
  assert.ok(Date.now() - t0 < 3000, 'stop does not wait for the connect timeout');
  try {
    await starting;
    assert.unreachable('start resolved after stop');
  } catch (err) {
    assert.match((err as Error).message, /EDGEFED_ERR_HUB_STOPPED/);
  }
  assert.not.ok((await fs.readdir(ctx.dir)).includes('hub.lock'));
});

test.run();
