/**
 * Refusals as a device maker meets them with `mosquitto_pub`: the reason
 * arrives on `edgefed/v1/hub/errors/{id}` (seen with `mosquitto_sub`), the bad
 * payload is not retained (a fresh subscriber sees the previous good one or
 * nothing), and the registry does not change.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  getNode, health, killStrays, MosquittoSub, mosquittoPub, mosquittoSubOnce, publishRegistration, registration,
  retainedRegistration, SharedHub, topic, waitForNodeStatus, within,
} from './helpers.js';

const shared = new SharedHub('edgefed-interop-refusals-');
const test = suite('interop: refusals seen with mosquitto_sub');
test.after.each(() => killStrays());
test.after(() => shared.close());

interface HubErrorMsg { code: string; reason: string; topic: string; node_id?: string; ts: number }

interface Case { name: string; node: string; topic: string; args: string[]; input?: string; code: string }

test('bad payloads: reported on hub/errors/{id}, never retained, registry unchanged', within(40_000, 'refusals', async () => {
  const { hub, broker } = await shared.get();
  const good = registration('dev-r1', { labels: { site: 'lab' } });
  await publishRegistration(broker, good);
  await waitForNodeStatus(hub, 'dev-r1', 'active');
  const before = await getNode(hub, 'dev-r1');
  const refusalsBefore = (await health(hub)).counters.refusals;

  const reg = (id: string) => topic.registration(id);
  const cases: Case[] = [
    { name: 'not JSON', node: 'dev-r1', topic: reg('dev-r1'), args: ['-m', 'hello, this is not json'], code: 'not_json' },
    { name: 'node_id mismatch', node: 'dev-r1', topic: reg('dev-r1'), args: ['-m', JSON.stringify(registration('dev-other'))], code: 'node_id_mismatch' },
    { name: 'schema: no capabilities', node: 'dev-r1', topic: reg('dev-r1'), args: ['-m', JSON.stringify(registration('dev-r1', { capabilities: [] }))], code: 'schema' },
    { name: 'schema: ts is a string', node: 'dev-r1', topic: reg('dev-r1'), args: ['-m', JSON.stringify(registration('dev-r1', { ts: 'yesterday' }))], code: 'schema' },
    { name: 'too large (stdin, -s)', node: 'dev-r1', topic: reg('dev-r1'), args: ['-s'], input: 'x'.repeat(70_000), code: 'too_large' },
    { name: 'status not JSON', node: 'dev-r1', topic: topic.status('dev-r1'), args: ['-m', '{"state":'], code: 'not_json' },
    { name: 'schema: missing boot_id (never registered node)', node: 'dev-r2', topic: reg('dev-r2'), args: ['-m', JSON.stringify({ node_id: 'dev-r2', capabilities: ['monitoring'], ts: 1 })], code: 'schema' },
    { name: 'not an object (never registered node)', node: 'dev-r2', topic: reg('dev-r2'), args: ['-m', '[1,2,3]'], code: 'not_object' },
  ];

  // One subscriber for every error, ended by its count (+1: the retained hub status, our readiness mark).
  const errors = await MosquittoSub.start(broker, [
    '-t', topic.hubError('dev-r1'), '-t', topic.hubError('dev-r2'), '-t', topic.hubStatus,
    '-C', String(cases.length + 1), '-W', '20',
  ]);
  await errors.ready();
  for (const c of cases) {
    await mosquittoPub(broker, ['-r', '-q', '1', '-t', c.topic, ...c.args], c.input === undefined ? {} : { input: c.input });
  }
  const result = await errors.done();
  assert.is(result.code, 0, `mosquitto_sub ended by its -C count (got ${result.code}; stderr ${result.stderr}; saw ${JSON.stringify(result.messages)})`);

  const reports = result.messages.filter((m) => m.topic !== topic.hubStatus).map((m) => ({ at: m.topic, body: JSON.parse(m.payload) as HubErrorMsg }));
  assert.is(reports.length, cases.length);
  for (const c of cases) {
    const i = reports.findIndex((r) => r.at === topic.hubError(c.node) && r.body.topic === c.topic && r.body.code === c.code);
    assert.ok(i >= 0, `${c.name}: expected ${c.code} on ${topic.hubError(c.node)} for ${c.topic}; got ${JSON.stringify(reports)}`);
    const [r] = reports.splice(i, 1);
    assert.is(r!.body.node_id, c.node, `${c.name}: node_id`);
    assert.type(r!.body.reason, 'string');
    assert.ok(r!.body.reason.length > 0, `${c.name}: a reason`);
    assert.type(r!.body.ts, 'number');
  }

  // Not retained: a fresh subscriber gets the last good registration, or nothing.
  const kept = await retainedRegistration(broker, 'dev-r1');
  assert.ok(kept, 'dev-r1 still has its good registration retained');
  assert.equal(JSON.parse(kept!.payload), good);
  assert.is(await retainedRegistration(broker, 'dev-r2'), undefined, 'nothing retained for dev-r2');
  const status = await mosquittoSubOnce(broker, ['-t', topic.status('dev-r1'), '-C', '1', '-W', '2']);
  assert.equal(status.messages, [], 'no status retained for dev-r1');

  // The registry is unchanged, and the refusals were counted by code.
  assert.equal(await getNode(hub, 'dev-r1'), before);
  assert.is(await getNode(hub, 'dev-r2'), undefined);
  const refusals = (await health(hub)).counters.refusals;
  const delta = (code: string) => (refusals[code] ?? 0) - (refusalsBefore[code] ?? 0);
  assert.equal(
    { not_json: delta('not_json'), node_id_mismatch: delta('node_id_mismatch'), schema: delta('schema'), too_large: delta('too_large'), not_object: delta('not_object') },
    { not_json: 2, node_id_mismatch: 1, schema: 3, too_large: 1, not_object: 1 },
  );
}));

test('an invalid node id in the topic: reported on hub/errors/_invalid, nothing retained or registered', within(20_000, 'invalid id', async () => {
  const { hub, broker } = await shared.get();
  const bad = 'edgefed/v1/nodes/-bad/registration';
  const errors = await MosquittoSub.start(broker, ['-t', topic.hubError('_invalid'), '-t', topic.hubStatus, '-W', '10']);
  await errors.ready();
  await mosquittoPub(broker, ['-r', '-q', '1', '-t', bad, '-m', JSON.stringify(registration('-bad'))]);
  // Waits for the report itself, not for a message count: one CI run saw two messages on these topics and no report (left unexplained; the messages are named if it happens again).
  const reported = await errors.next((m) => m.topic === topic.hubError('_invalid'), 8000, 'the report on hub/errors/_invalid')
    .catch((err: Error) => { throw new Error(`${err.message}; saw ${JSON.stringify(errors.messages)}`); })
    .finally(() => errors.kill());
  const report = JSON.parse(reported.payload) as HubErrorMsg;
  assert.is(report.code, 'invalid_node_id');
  assert.is(report.topic, bad);
  const retained = await mosquittoSubOnce(broker, ['-t', bad, '-C', '1', '-W', '2']);
  assert.equal(retained.messages, []);
  assert.is(await getNode(hub, '-bad'), undefined);
}));

test('a valid registration after refusals is taken at once', within(20_000, 'recovery', async () => {
  const { hub, broker } = await shared.get();
  await mosquittoPub(broker, ['-r', '-q', '1', '-t', topic.registration('dev-r3'), '-m', '{"node_id":"dev-r3"']);
  const fixed = registration('dev-r3');
  await publishRegistration(broker, fixed);
  await waitForNodeStatus(hub, 'dev-r3', 'active', 1000);
  const kept = await retainedRegistration(broker, 'dev-r3');
  assert.equal(JSON.parse(kept!.payload), fixed);
}));

test.run();
