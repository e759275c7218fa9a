/**
 * Presence and leaving, with a device made of mosquitto clients: a
 * `mosquitto_sub` holding a session with a Last Will (killed with SIGKILL, so
 * the broker publishes the will), and `mosquitto_pub -r -n` to deregister.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from '../helpers/time.js';
import {
  getNode, health, killStrays, listNodes, mosquittoPub, mosquittoSubOnce, publishRegistration, registration,
  retainedRegistration, SharedHub, topic, waitForNodeStatus, willHolder, within,
} from './helpers.js';

const shared = new SharedHub('edgefed-interop-presence-');
const test = suite('interop: presence (Last Will) and deregistration with mosquitto clients');
test.after.each(() => killStrays());
test.after(() => shared.close());

const will = (bootId: string) => ({ state: 'offline', reason: 'lost', boot_id: bootId, ts: Date.now() });

test('presence: the device\'s session is killed (SIGKILL) -> its will turns the node offline', within(20_000, 'will', async () => {
  const { hub, broker } = await shared.get();
  await publishRegistration(broker, registration('dev-p1', { boot_id: 'boot-A' }));
  const lastWill = will('boot-A');
  const device = await willHolder(broker, 'dev-p1', 'dev-p1', lastWill);
  await waitForNodeStatus(hub, 'dev-p1', 'active');

  await device.kill('SIGKILL');
  const node = await waitForNodeStatus(hub, 'dev-p1', 'offline', 3000);
  assert.is(node.status_reason, 'lost');
  assert.is(node.boot_id, 'boot-A');
  assert.not.ok((await listNodes(hub, '?status=active')).some((n) => n.node_id === 'dev-p1'));
  // The will is retained, as the contract says, for operators arriving later.
  const status = await mosquittoSubOnce(broker, ['-t', topic.status('dev-p1'), '-C', '1', '-W', '3']);
  assert.is(status.messages.length, 1, 'the will is retained');
  assert.equal(JSON.parse(status.messages[0]!.payload), lastWill);

  // The device comes back with the same boot id and says so on its status topic.
  await mosquittoPub(broker, ['-r', '-q', '1', '-t', topic.status('dev-p1'), '-m', JSON.stringify({ state: 'online', boot_id: 'boot-A', ts: Date.now() })]);
  await waitForNodeStatus(hub, 'dev-p1', 'active', 2000);
}));

test('presence: a will of an older boot_id (the device restarted meanwhile) is ignored', within(20_000, 'older will', async () => {
  const { hub, broker } = await shared.get();
  await publishRegistration(broker, registration('dev-p2', { boot_id: 'boot-old' }));
  const oldSession = await willHolder(broker, 'dev-p2-old', 'dev-p2', will('boot-old'));
  await waitForNodeStatus(hub, 'dev-p2', 'active');
  // The device restarts: a new boot id, a new session, while the old one is still open.
  await publishRegistration(broker, registration('dev-p2', { boot_id: 'boot-new' }));
  const newSession = await willHolder(broker, 'dev-p2-new', 'dev-p2', will('boot-new'));
  await waitFor(async () => (await getNode(hub, 'dev-p2'))?.boot_id === 'boot-new', { label: 'dev-p2 on boot-new' });
  const ignoredBefore = (await health(hub)).counters.ignored.older_session;

  await oldSession.kill('SIGKILL');
  // The broker did publish the old will (a fresh subscriber sees it retained) ...
  await waitFor(async () => {
    const r = await mosquittoSubOnce(broker, ['-t', topic.status('dev-p2'), '-C', '1', '-W', '2']);
    return r.messages.some((m) => (JSON.parse(m.payload) as { boot_id: string }).boot_id === 'boot-old');
  }, { timeoutMs: 6000, intervalMs: 100, label: 'the old will published' });
  // ... and the hub saw it and set it aside.
  await waitFor(async () => (await health(hub)).counters.ignored.older_session > ignoredBefore, { label: 'older_session counted' });
  const node = await getNode(hub, 'dev-p2');
  assert.is(node?.status, 'active');
  assert.is(node?.boot_id, 'boot-new');

  // The current session's will still counts.
  await newSession.kill('SIGKILL');
  const gone = await waitForNodeStatus(hub, 'dev-p2', 'offline', 3000);
  assert.is(gone.status_reason, 'lost');
}));

test('deregistration: mosquitto_pub -r -n clears the retained registration and deregisters the node', within(20_000, 'deregister', async () => {
  const { hub, broker } = await shared.get();
  const reg = registration('dev-d1');
  await publishRegistration(broker, reg);
  await waitForNodeStatus(hub, 'dev-d1', 'active');
  assert.ok(await retainedRegistration(broker, 'dev-d1'), 'retained before');

  await mosquittoPub(broker, ['-r', '-n', '-q', '1', '-t', topic.registration('dev-d1')]);
  const node = await waitForNodeStatus(hub, 'dev-d1', 'deregistered', 2000);
  assert.is(node.node_id, 'dev-d1');
  assert.not.ok((await listNodes(hub, '?status=active')).some((n) => n.node_id === 'dev-d1'));
  assert.ok((await listNodes(hub, '?status=deregistered')).some((n) => n.node_id === 'dev-d1'));
  assert.is(await retainedRegistration(broker, 'dev-d1'), undefined, 'nothing retained after the null message');

  // It may join again later.
  await publishRegistration(broker, registration('dev-d1', { boot_id: 'boot-again' }));
  const back = await waitForNodeStatus(hub, 'dev-d1', 'active', 2000);
  assert.is(back.boot_id, 'boot-again');
}));

test('deregistration of a node the hub never knew changes nothing', within(20_000, 'deregister unknown', async () => {
  const { hub, broker } = await shared.get();
  const count = (await listNodes(hub)).length;
  await mosquittoPub(broker, ['-r', '-n', '-q', '1', '-t', topic.registration('dev-never')]);
  await publishRegistration(broker, registration('dev-marker')); // processed after the null message: a sync point
  await waitForNodeStatus(hub, 'dev-marker', 'active');
  assert.is(await getNode(hub, 'dev-never'), undefined);
  assert.is((await listNodes(hub)).length, count + 1);
}));

test.run();
