/**
 * Work packages with nothing but the mosquitto clients against a real
 * `edgefed start`: a device that runs a WPK with mosquitto_sub/mosquitto_pub,
 * an operator who watches it, a cancel reaching the device, and a trigger
 * from someone who is not the hub.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor, withTimeout } from '../helpers/time.js';
import { health, killStrays, MosquittoSub, mosquittoPub, publishRegistration, SharedHub, topic, within, type HubProcess } from './helpers.js';

const shared = new SharedHub('edgefed-interop-wpk-');
const test = suite('interop: work packages with mosquitto_pub/mosquitto_sub');
test.after.each(() => killStrays());
test.after(() => shared.close());

const trigger = (cap: string, node?: string) => `edgefed/v1/wpk/${cap}/trigger${node === undefined ? '' : `/${node}`}`;
const execution = (node: string, wpk: string) => `edgefed/v1/nodes/${node}/executions/${wpk}`;

interface Wpk { wpk_id: string; state: string; assignee: string | null; result: Record<string, unknown> | null; executions: Array<{ node_id: string; state: string }> }

async function http<T>(hub: HubProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const init: RequestInit = { method };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers = { 'content-type': 'application/json' }; }
  const res = await withTimeout(fetch(`${hub.httpUrl}${path}`, init), 3000, `${method} ${path}`);
  return { status: res.status, body: (await res.json()) as T };
}

const wpkState = async (hub: HubProcess, id: string) => (await http<Wpk>(hub, 'GET', `/federation/wpk/${id}`)).body.state;

/** A device's view: its triggers and its commands, as mosquitto_sub prints them. */
async function deviceListening(broker: string[], nodeId: string, cap: string): Promise<MosquittoSub> {
  const sub = await MosquittoSub.start(broker, ['-v', '-q', '1', '-W', '30', '-t', trigger(cap), '-t', trigger(cap, nodeId), '-t', topic.commands(nodeId)]);
  return sub;
}

function update(node: string, wpk: string, attempt: number, state: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ wpk_id: wpk, node_id: node, attempt, state, ts: Date.now(), ...extra });
}

test('a device runs a WPK with mosquitto_sub and mosquitto_pub; an operator sees it all', within(25_000, 'device wpk', async () => {
  const { hub, broker } = await shared.get();
  const operator = await MosquittoSub.start(broker, ['-v', '-q', '1', '-W', '30', '-t', 'edgefed/#']);
  await operator.ready();
  const device = await deviceListening(broker, 'sh-1', 'shell');
  await publishRegistration(broker, { node_id: 'sh-1', capabilities: ['shell'], boot_id: 'sh-boot-1', ts: Date.now(), max_concurrency: 2 });
  await waitFor(async () => (await http<{ status: string }>(hub, 'GET', '/federation/nodes/sh-1')).body.status === 'active', { timeoutMs: 3000, label: 'sh-1 active' });

  const created = await http<Wpk>(hub, 'POST', '/federation/wpk', { capability: 'shell', action: 'uptime', params: { verbose: true } });
  assert.is(created.status, 201);
  assert.is(created.body.assignee, 'sh-1');
  const id = created.body.wpk_id;
  const got = await device.next((m) => m.topic === trigger('shell', 'sh-1') && m.payload.includes(id), 5000, 'the trigger at the device');
  const trig = JSON.parse(got.payload) as { assignee: string; attempt: number; params: unknown };
  assert.equal([trig.assignee, trig.attempt, trig.params], ['sh-1', 1, { verbose: true }]);

  for (const [state, extra] of [['accepted', {}], ['running', { progress: 0.5 }], ['succeeded', { result: { uptime_s: 1234 } }]] as const) {
    const r = await mosquittoPub(broker, ['-q', '1', '-t', execution('sh-1', id), '-m', update('sh-1', id, 1, state, extra)]);
    assert.is(r.code, 0, r.stderr);
  }
  await waitFor(async () => (await wpkState(hub, id)) === 'succeeded', { timeoutMs: 3000, label: 'succeeded' });
  const done = (await http<Wpk>(hub, 'GET', `/federation/wpk/${id}`)).body;
  assert.equal(done.result, { uptime_s: 1234 });
  assert.equal(done.executions.map((e) => [e.node_id, e.state]), [['sh-1', 'succeeded']]);
  await operator.next((m) => m.topic === execution('sh-1', id) && m.payload.includes('"succeeded"'), 3000, 'operator sees the result');
  assert.ok(operator.messages.some((m) => m.topic === trigger('shell', 'sh-1') && m.payload.includes(id)), 'operator sees the trigger');
}));

test('cancel reaches the device on its commands topic; a late result does not change the canceled WPK', within(25_000, 'cancel', async () => {
  const { hub, broker } = await shared.get();
  const device = await deviceListening(broker, 'sh-2', 'slow');
  await publishRegistration(broker, { node_id: 'sh-2', capabilities: ['slow'], boot_id: 'sh-boot-2', ts: Date.now() });
  await waitFor(async () => (await http<{ status: string }>(hub, 'GET', '/federation/nodes/sh-2')).body.status === 'active', { timeoutMs: 3000, label: 'sh-2 active' });
  const id = (await http<Wpk>(hub, 'POST', '/federation/wpk', { capability: 'slow', action: 'sleep' })).body.wpk_id;
  await device.next((m) => m.topic === trigger('slow', 'sh-2') && m.payload.includes(id), 5000, 'trigger');
  await mosquittoPub(broker, ['-q', '1', '-t', execution('sh-2', id), '-m', update('sh-2', id, 1, 'running')]);
  await waitFor(async () => (await wpkState(hub, id)) === 'running', { timeoutMs: 3000, label: 'running' });

  const canceled = await http<Wpk>(hub, 'POST', `/federation/wpk/${id}/cancel`);
  assert.equal([canceled.status, canceled.body.state], [200, 'canceled']);
  const cmd = await device.next((m) => m.topic === topic.commands('sh-2'), 3000, 'cancel command');
  assert.equal(JSON.parse(cmd.payload).command, 'cancel');
  await mosquittoPub(broker, ['-q', '1', '-t', execution('sh-2', id), '-m', update('sh-2', id, 1, 'failed', { error: 'canceled by the hub' })]);
  await waitFor(async () => (await http<Wpk>(hub, 'GET', `/federation/wpk/${id}`)).body.executions[0]?.state === 'failed', { timeoutMs: 3000, label: 'late result recorded' });
  assert.is(await wpkState(hub, id), 'canceled');
  assert.is((await http<unknown>(hub, 'POST', `/federation/wpk/${id}/cancel`)).status, 409);
}));

test('a trigger published by mosquitto_pub (not the hub) is refused and counted', within(20_000, 'foreign trigger', async () => {
  const { hub, broker } = await shared.get();
  const refusals = async () => ((await health(hub)) as { counters: { refusals: Record<string, number> } }).counters.refusals.not_allowed ?? 0;
  const before = await refusals();
  const forged = { wpk_id: 'wpk_forged', capability: 'shell', action: 'rm', mode: 'all', attempt: 1, created_at: Date.now(), deadline: Date.now() + 60_000 };
  await mosquittoPub(broker, ['-q', '1', '-t', trigger('shell'), '-m', JSON.stringify(forged)]);
  await waitFor(async () => (await refusals()) === before + 1, { timeoutMs: 3000, label: 'refusal counted' });
  assert.is((await http<unknown>(hub, 'GET', '/federation/wpk/wpk_forged')).status, 404);
}));

test.run();
