/**
 * A device joins with nothing but `mosquitto_pub`, and an operator watches
 * with `mosquitto_sub -t 'edgefed/#' -v`, against a real `edgefed start`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from '../helpers/time.js';
import {
  getNode, health, listNodes, MosquittoSub, mosquittoPub, publishRegistration, registration, SharedHub, topic, within, killStrays,
} from './helpers.js';

const shared = new SharedHub('edgefed-interop-join-');
const test = suite('interop: join and observe with mosquitto_pub/mosquitto_sub');
test.after.each(() => killStrays());
test.after(() => shared.close());

test('join: a retained registration from mosquitto_pub is active in GET /federation/nodes within 1 s', within(20_000, 'join', async () => {
  const { hub, broker } = await shared.get();
  // The contract's own example, as a device maker would copy it.
  const reg = {
    node_id: 'dev-1', endpoint: 'http://dev-1:8040', capabilities: ['monitoring', 'basic-actions'],
    labels: { site: 'berlin' }, agent: { name: 'edgefed-agent', version: '0.1.0' },
    hardware: { arch: 'arm64', cpus: 4, memory_mb: 2048 }, heartbeat_interval_ms: 5000, max_concurrency: 4,
    boot_id: 'V1StGXR8_Z5jdHi6B-myT', ts: Date.now(),
  };
  await mosquittoPub(broker, ['-r', '-q', '1', '-t', 'edgefed/v1/nodes/dev-1/registration', '-m', JSON.stringify(reg)]);
  const published = Date.now();
  const node = await waitFor(async () => (await listNodes(hub)).find((n) => n.node_id === 'dev-1' && n.status === 'active'), {
    timeoutMs: 1000, intervalMs: 10, label: 'dev-1 active in GET /federation/nodes',
  }).catch(async (err: Error) => {
    const seen = await getNode(hub, 'dev-1').catch(() => undefined);
    throw new Error(`${err.message}; now: ${JSON.stringify(seen)}; hub log:\n${hub.lines.slice(-20).join('\n')}`);
  });
  assert.ok(Date.now() - published <= 1000, `active after ${Date.now() - published} ms`);
  assert.equal(node.capabilities, ['monitoring', 'basic-actions']);
  assert.is(node.boot_id, 'V1StGXR8_Z5jdHi6B-myT');
  assert.equal(node.labels, { site: 'berlin' });
  assert.is(node.endpoint, 'http://dev-1:8040');
  assert.is(node.heartbeat_interval_ms, 5000);

  // The documented filters find it, and exclude it when they should.
  const ids = async (q: string) => (await listNodes(hub, q)).map((n) => n.node_id);
  assert.ok((await ids('?capability=basic-actions&status=active&label=site=berlin')).includes('dev-1'));
  assert.not.ok((await ids('?capability=gpu')).includes('dev-1'));
  assert.not.ok((await ids('?label=site=paris')).includes('dev-1'));
  assert.not.ok((await ids('?status=offline')).includes('dev-1'));
}));

test('join: a minimal registration (only the required fields) is enough', within(20_000, 'minimal join', async () => {
  const { hub, broker } = await shared.get();
  await publishRegistration(broker, { node_id: 'plc-7', capabilities: ['basic-actions'], boot_id: 'fixed-1', ts: 1 });
  const node = await waitFor(async () => (await listNodes(hub, '?capability=basic-actions')).find((n) => n.node_id === 'plc-7'), {
    timeoutMs: 1000, label: 'plc-7 listed',
  });
  assert.is(node.status, 'active');
}));

test('operator: mosquitto_sub -t edgefed/# -v sees the hub status and every registration, retained and live', within(20_000, 'operator', async () => {
  const { hub, broker } = await shared.get();
  const before = [registration('op-a', { labels: { rack: '1' } }), registration('op-b')];
  for (const reg of before) await publishRegistration(broker, reg);

  const operator = await MosquittoSub.start(broker, ['-t', 'edgefed/#', '-v', '-W', '15']);
  const hubStatus = JSON.parse((await operator.ready()).payload) as { state: string; boot_id: string; ts: number };
  assert.is(hubStatus.state, 'online');
  assert.is(hubStatus.boot_id, (await health(hub)).boot_id, 'the retained hub status is this hub\'s');
  assert.type(hubStatus.ts, 'number');

  // Retained: published before the operator subscribed.
  for (const reg of before) {
    const m = await operator.next((x) => x.topic === topic.registration(String(reg.node_id)), 3000, `retained ${String(reg.node_id)}`);
    assert.equal(JSON.parse(m.payload), reg);
  }
  // Live: published while it watches.
  const later = registration('op-c', { capabilities: ['monitoring', 'gpu'] });
  await publishRegistration(broker, later);
  const m = await operator.next((x) => x.topic === topic.registration('op-c'), 3000, 'live op-c');
  assert.equal(JSON.parse(m.payload), later);

  // Every line of -v output is "<topic> <payload>" below the root, and payloads are JSON.
  for (const line of operator.messages) {
    assert.ok(line.topic.startsWith('edgefed/v1/'), line.topic);
    JSON.parse(line.payload);
  }
  await operator.kill('SIGTERM');
}));

test.run();
