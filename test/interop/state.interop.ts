/**
 * Desired state with nothing but the mosquitto clients (issue 16), against a
 * real `edgefed start`: a device joins with `mosquitto_pub`, reads its
 * desired state retained with `mosquitto_sub -C 1`, and reports the version
 * it applied with `mosquitto_pub -r -q 1`; the hub then shows it in sync. A
 * report of an older version is ignored. The CLI sets and shows the state.
 */
import { spawn } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI_ARGS } from '../helpers/cli.js';
import { waitFor, withTimeout } from '../helpers/time.js';
import {
  getJson, killStrays, mosquittoPub, mosquittoSubOnce, publishRegistration, registration, SharedHub, spawnListeningHub, startMosquitto, stopHub,
  tempDir, TOPIC_ROOT, waitForNodeStatus, within, type HubProcess,
} from './helpers.js';
import fs from 'node:fs/promises';

const shared = new SharedHub('edgefed-interop-state-');
const test = suite('interop: desired state with mosquitto_pub/mosquitto_sub only');
test.after.each(() => killStrays());
test.after(() => shared.close());

interface StateView { version: number; desired: Record<string, unknown>; reported: Record<string, unknown> | null; reported_version: number | null; in_sync: boolean; delta: Record<string, unknown> }

const desiredTopic = (id: string) => `${TOPIC_ROOT}/nodes/${id}/desired`;
const reportedTopic = (id: string) => `${TOPIC_ROOT}/nodes/${id}/reported`;

/** `edgefed ARGS` as a process; resolves with its exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return withTimeout(new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr }))), 15_000, `edgefed ${args.join(' ')}`);
}

test('a mosquitto-only device reads its retained desired state and reports it: in sync', within(40_000, 'mosquitto device', async () => {
  const { hub, broker } = await shared.get();
  await publishRegistration(broker, registration('mq-1', { capabilities: ['sensor'], labels: { site: 'lab' } }));
  await waitFor(async () => (await getJson<{ status: string }>(hub, '/federation/nodes/mq-1')).body.status === 'active', { timeoutMs: 3000, label: 'mq-1 active' });

  // The operator sets it with the CLI (fan-out by capability and label), while the device is not listening.
  const set = await cli(['state', 'set', '--capability', 'sensor', '--label', 'site=lab', '--patch', '{"interval_s": 5, "debug": true}', '--hub', hub.httpUrl]);
  assert.is(set.code, 0, set.stderr);
  assert.match(set.stdout, /1 of 1 node\(s\) set/);
  const second = await cli(['state', 'set', 'mq-1', '--patch', '{"debug": null}', '--if-version', '1', '--hub', hub.httpUrl, '--json']);
  assert.is(second.code, 0, second.stderr);
  assert.is((JSON.parse(second.stdout) as { results: Array<{ state: StateView }> }).results[0]!.state.version, 2);
  const stale = await cli(['state', 'set', 'mq-1', '--patch', '{"x": 1}', '--if-version', '1', '--hub', hub.httpUrl]);
  assert.is(stale.code, 1);
  assert.match(stale.stdout, /412/);

  // The device comes back: only the latest version waits for it, retained.
  const got = await mosquittoSubOnce(broker, ['-t', desiredTopic('mq-1'), '-C', '1', '-W', '5']);
  assert.is(got.messages.length, 1, got.stderr);
  const desired = JSON.parse(got.messages[0]!.payload) as { version: number; state: Record<string, unknown> };
  assert.is(desired.version, 2);
  assert.equal(desired.state, { interval_s: 5 });

  await mosquittoPub(broker, ['-r', '-q', '1', '-t', reportedTopic('mq-1'), '-m', JSON.stringify({ version: 2, state: { interval_s: 5 }, ts: Date.now() })]);
  const synced = await waitFor(async () => {
    const s = (await getJson<StateView>(hub, '/federation/nodes/mq-1/state')).body;
    return s.in_sync ? s : undefined;
  }, { timeoutMs: 3000, label: 'mq-1 in sync' });
  assert.equal(synced.reported, { interval_s: 5 });

  // An older report changes nothing.
  await mosquittoPub(broker, ['-r', '-q', '1', '-t', reportedTopic('mq-1'), '-m', JSON.stringify({ version: 1, state: { interval_s: 5, debug: true }, ts: Date.now() })]);
  await new Promise((r) => setTimeout(r, 300));
  const after = (await getJson<StateView>(hub, '/federation/nodes/mq-1/state')).body;
  assert.is(after.reported_version, 2);
  assert.ok(after.in_sync);

  const shown = await cli(['state', 'show', 'mq-1', '--hub', hub.httpUrl]);
  assert.is(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /in sync\s+yes/);
  assert.match(shown.stdout, /version\s+2/);
}));

test('without auth a foreign desired state published with mosquitto_pub is replaced by the hub\'s', within(30_000, 'foreign desired', async () => {
  const { hub, broker } = await shared.get();
  await publishRegistration(broker, registration('mq-2'));
  await waitFor(async () => (await getJson<{ status: string }>(hub, '/federation/nodes/mq-2')).body.status === 'active', { timeoutMs: 3000, label: 'mq-2 active' });
  const set = await cli(['state', 'set', 'mq-2', '--patch', '{"mode": "eco"}', '--hub', hub.httpUrl]);
  assert.is(set.code, 0, set.stderr);
  await mosquittoPub(broker, ['-r', '-q', '1', '-t', desiredTopic('mq-2'), '-m', JSON.stringify({ version: 50, state: { mode: 'evil' }, ts: Date.now() })]);
  await waitFor(async () => {
    const got = await mosquittoSubOnce(broker, ['-t', desiredTopic('mq-2'), '-C', '1', '-W', '2']);
    return got.messages[0] && (JSON.parse(got.messages[0].payload) as { version: number }).version === 1;
  }, { timeoutMs: 8000, intervalMs: 200, label: 'the hub\'s desired state back on the broker' });
}));

test('on an external mosquitto: a new broker that has none of the retained state gets the desired state back from the restarted hub', within(60_000, 'lost store', async () => {
  const dir = await tempDir('edgefed-interop-state-ext-');
  let first = await startMosquitto();
  let hub: HubProcess | undefined;
  try {
    hub = await spawnListeningHub(['--broker-url', `mqtt://127.0.0.1:${first.port}`, '--data-dir', dir]);
    const broker = ['-h', '127.0.0.1', '-p', String(first.port)];
    await publishRegistration(broker, registration('ext-s1'));
    await waitForNodeStatus(hub, 'ext-s1', 'active');
    const set = await cli(['state', 'set', 'ext-s1', '--patch', '{"interval_s": 30}', '--hub', hub.httpUrl]);
    assert.is(set.code, 0, set.stderr);
    const before = await mosquittoSubOnce(broker, ['-t', desiredTopic('ext-s1'), '-C', '1', '-W', '5']);
    assert.is((JSON.parse(before.messages[0]!.payload) as { version: number }).version, 1);

    // The hub stops, and the site's broker is replaced by one with an empty store.
    await stopHub(hub);
    hub = undefined;
    await first.stop();
    first = await startMosquitto();
    const fresh = ['-h', '127.0.0.1', '-p', String(first.port)];
    assert.is((await mosquittoSubOnce(fresh, ['-t', desiredTopic('ext-s1'), '-C', '1', '-W', '1'])).messages.length, 0, 'the new broker holds nothing');
    hub = await spawnListeningHub(['--broker-url', `mqtt://127.0.0.1:${first.port}`, '--data-dir', dir]);
    const back = await waitFor(async () => {
      const got = await mosquittoSubOnce(fresh, ['-t', desiredTopic('ext-s1'), '-C', '1', '-W', '2']);
      return got.messages[0];
    }, { timeoutMs: 10_000, intervalMs: 200, label: 'desired state republished to the new broker' });
    const desired = JSON.parse(back.payload) as { version: number; state: unknown };
    assert.is(desired.version, 1);
    assert.equal(desired.state, { interval_s: 30 });
    const kept = (await getJson<StateView>(hub, '/federation/nodes/ext-s1/state')).body;
    assert.equal([kept.version, kept.desired], [1, { interval_s: 30 }], 'the store kept it');
  } finally {
    await stopHub(hub);
    await first.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}));

test.run();
