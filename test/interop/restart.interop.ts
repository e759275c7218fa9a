/**
 * The hub is killed with SIGKILL (its embedded broker and every retained
 * message die with it) and started again on the same data dir: a fresh
 * `mosquitto_sub -t 'edgefed/v1/nodes/+/registration' -C N -W 5` sees every
 * registered node again, re-published by the hub from its registry.
 */
import fs from 'node:fs/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  brokerArgs, health, kill9, killStrays, listNodes, MosquittoSub, mosquittoPub, mosquittoSubOnce, publishRegistration, registration,
  requireMosquittoClients, spawnListeningHub, stopHub, tempDir, topic, waitForFlushed, waitForNodeStatus, within, type HubProcess,
} from './helpers.js';

interface Ctx { dir: string; hubs: HubProcess[] }
const test = suite<Ctx>('interop: hub restart after kill -9, seen with mosquitto_sub', { dir: '', hubs: [] });
test.before.each(async (ctx) => {
  ctx.hubs = [];
  ctx.dir = await tempDir('edgefed-interop-restart-');
});
test.after.each(async (ctx) => {
  await killStrays();
  for (const h of ctx.hubs) await stopHub(h);
  await fs.rm(ctx.dir, { recursive: true, force: true }).catch(() => undefined);
});

test('kill -9 and restart: every registered node is retained again, deregistered ones are not', within(60_000, 'restart', async (ctx: Ctx) => {
  await requireMosquittoClients();
  const hub1 = await spawnListeningHub(['--data-dir', ctx.dir]);
  ctx.hubs.push(hub1);
  const broker1 = brokerArgs(hub1);
  const regs = Array.from({ length: 6 }, (_, i) => registration(`fleet-${i}`, { labels: { row: String(i % 2) }, ts: 1_700_000_000_000 + i }));
  for (const reg of regs) await publishRegistration(broker1, reg);
  await publishRegistration(broker1, registration('leaver'));
  await waitForNodeStatus(hub1, 'leaver', 'active');
  await mosquittoPub(broker1, ['-r', '-n', '-q', '1', '-t', topic.registration('leaver')]);
  await waitForNodeStatus(hub1, 'leaver', 'deregistered');
  const ids = regs.map((r) => String(r.node_id));
  await waitForFlushed(ctx.dir, ids, ['leaver']); // what kill -9 cannot take away any more
  const boot1 = (await health(hub1)).boot_id;

  await kill9(hub1);
  ctx.hubs = [];
  const hub2 = await spawnListeningHub(['--data-dir', ctx.dir]);
  ctx.hubs.push(hub2);
  const broker2 = brokerArgs(hub2);

  const seen = await mosquittoSubOnce(broker2, ['-t', 'edgefed/v1/nodes/+/registration', '-C', String(regs.length), '-W', '5']);
  assert.is(seen.code, 0, `got ${seen.messages.length} of ${regs.length} registrations (exit ${seen.code}): ${JSON.stringify(seen.messages)}`);
  const byId = new Map(seen.messages.map((m) => [(JSON.parse(m.payload) as { node_id: string }).node_id, m]));
  assert.equal([...byId.keys()].sort(), [...ids].sort(), 'every registered node, once, and not the deregistered one');
  for (const reg of regs) {
    const m = byId.get(String(reg.node_id))!;
    assert.is(m.topic, topic.registration(String(reg.node_id)));
    assert.equal(JSON.parse(m.payload), reg, 'the registration as the device published it');
  }

  // The registry came back from disk: restored nodes are stale until they speak, the leaver stays deregistered.
  const nodes = await listNodes(hub2);
  assert.equal(nodes.filter((n) => n.status === 'stale').map((n) => n.node_id).sort(), [...ids].sort());
  assert.is(nodes.find((n) => n.node_id === 'leaver')?.status, 'deregistered');

  // An operator sees the new hub's status, and a device re-announcing (a new boot) is active again.
  const operator = await MosquittoSub.start(broker2, ['-t', 'edgefed/#', '-W', '10']);
  const status = JSON.parse((await operator.ready()).payload) as { state: string; boot_id: string };
  assert.is(status.state, 'online');
  assert.is.not(status.boot_id, boot1, 'a new hub boot');
  await publishRegistration(broker2, { ...regs[0]!, boot_id: 'boot-after-restart', ts: Date.now() });
  await waitForNodeStatus(hub2, 'fleet-0', 'active', 1000);
  await operator.kill('SIGTERM');
}));

test.run();
