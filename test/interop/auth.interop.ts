/**
 * `edgefed start --auth jwt` with the real mosquitto clients: operators and
 * devices pass their token with `-u/-P`, anonymous clients are refused, and
 * the broker holds an agent to its own topics.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { issueToken, loadOrCreateSigningKey, type IssueOptions } from '../../auth/index.js';
import { waitFor } from '../helpers/time.js';
import {
  killStrays, MosquittoSub, mosquittoPub, mosquittoSubOnce, registration, SharedHub, topic, within, type HubProcess,
} from './helpers.js';

/** GET /federation/nodes/:id with an operator's bearer token (the API wants one with --auth jwt). */
async function nodeStatus(hub: HubProcess, dir: string, id: string): Promise<string | undefined> {
  const res = await fetch(`${hub.httpUrl}/federation/nodes/${id}`, { headers: { authorization: `Bearer ${await token(dir, { role: 'operator' })}` } });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`GET /federation/nodes/${id}: HTTP ${res.status}`);
  return ((await res.json()) as { status: string }).status;
}

const shared = new SharedHub('edgefed-interop-auth-', ['--auth', 'jwt']);
const test = suite('interop: --auth jwt with mosquitto_pub -u/-P and mosquitto_sub -u/-P');
test.after.each(() => killStrays());
test.after(() => shared.close());

async function token(dir: string, o: Omit<IssueOptions, 'ttlSeconds'>): Promise<string> {
  return issueToken({ ttlSeconds: 600, ...o }, await loadOrCreateSigningKey(dir));
}

test('an anonymous mosquitto_sub is refused; an operator token reads edgefed/#', within(20_000, 'operator', async () => {
  const { broker, dir } = await shared.get();
  const anon = await mosquittoSubOnce(broker, ['-t', 'edgefed/#', '-C', '1', '-W', '3']);
  assert.not.equal(anon.code, 0);
  assert.match(anon.stderr, /not authori[sz]ed|bad user name or password/i);
  const op = await token(dir, { role: 'operator' });
  const seen = await mosquittoSubOnce(broker, ['-u', 'operator', '-P', op, '-t', topic.hubStatus, '-C', '1', '-W', '5']);
  assert.is(seen.code, 0, seen.stderr);
  assert.match(seen.messages[0]?.payload ?? '', /"state":"online"/);
}));

test('a device joins with mosquitto_pub -i/-u/-P and its token; another node\'s registration and a trigger from it are dropped', within(20_000, 'device', async () => {
  const { hub, broker, dir } = await shared.get();
  const dev = await token(dir, { role: 'agent', subject: 'sec-1', caps: ['monitoring'] });
  const as = ['-i', 'sec-1', '-u', 'sec-1', '-P', dev];
  await mosquittoPub(broker, [...as, '-r', '-q', '1', '-t', topic.registration('sec-1'), '-m', JSON.stringify(registration('sec-1'))]);
  await waitFor(async () => (await nodeStatus(hub, dir, 'sec-1')) === 'active', { timeoutMs: 3000, label: 'sec-1 active' });
  // Dropped, not disconnected: mosquitto_pub still exits 0 (QoS 1 is acknowledged).
  await mosquittoPub(broker, [...as, '-r', '-q', '1', '-t', topic.registration('sec-2'), '-m', JSON.stringify(registration('sec-2'))]);
  const forged = { wpk_id: 'wpk_x', capability: 'monitoring', action: 'x', mode: 'one', assignee: 'sec-1', attempt: 1, created_at: 1, deadline: Date.now() + 60_000 };
  await mosquittoPub(broker, [...as, '-q', '1', '-t', 'edgefed/v1/wpk/monitoring/trigger/sec-1', '-m', JSON.stringify(forged)]);
  await new Promise((r) => setTimeout(r, 300));
  assert.is(await nodeStatus(hub, dir, 'sec-2'), undefined, 'another node\'s registration never reached the hub');
  const op = await token(dir, { role: 'operator' });
  const retained = await mosquittoSubOnce(broker, ['-u', 'operator', '-P', op, '-t', topic.registration('sec-2'), '-C', '1', '-W', '2']);
  assert.is(retained.messages.length, 0, 'and was not retained');
}));

test('an agent token subscribing to # is refused (SUBACK failure); its own topics are granted', within(20_000, 'subscribe', async () => {
  const { broker, dir } = await shared.get();
  const dev = await token(dir, { role: 'agent', subject: 'sec-3', caps: ['monitoring'] });
  const all = await mosquittoSubOnce(broker, ['-i', 'sec-3', '-u', 'sec-3', '-P', dev, '-t', '#', '-C', '1', '-W', '3']);
  assert.match(all.stderr, /denied/i);
  const own = await MosquittoSub.start(broker, ['-i', 'sec-3', '-u', 'sec-3', '-P', dev, '-v', '-t', topic.hubStatus, '-W', '5']);
  const status = await own.next((m) => m.topic === topic.hubStatus, 4000, 'hub status for the agent');
  assert.match(status.payload, /"state":"online"/);
  await own.kill();
}));

test.run();
