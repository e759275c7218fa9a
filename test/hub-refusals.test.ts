/**
 * Bad input from MQTT devices: each is refused as the contract says (never
 * retained, registry untouched, logged once, counted, reported on
 * hub/errors/{node_id}) while the broker and hub keep serving everyone else.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Federation } from '../server/federation.js';
import type { Logger } from '../lib/log.js';
import { jsonLogger } from '../lib/log.js';
import { validators } from '../schemas/index.js';
import { closeAll, collector, device, federation, registration } from './helpers/federation.js';
import { retainedNow } from './helpers/broker.js';
import { waitFor, withTimeout } from './helpers/time.js';

interface Ctx { fed?: Federation; lines: Array<Record<string, unknown>> }
const test = suite<Ctx>('hub: refusals', { lines: [] });

function capturingLogger(lines: Array<Record<string, unknown>>): Logger {
  return jsonLogger('info', {}, { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>); } });
}

test.after.each(async (ctx) => {
  await ctx.fed?.stop();
  ctx.fed = undefined;
  ctx.lines = [];
});

const long = 'x'.repeat(65);
const good = registration('good-1', { capabilities: ['monitoring'] });

const cases: Array<{ name: string; nodeId: string; payload: string | Buffer; code: string }> = [
  { name: 'not JSON', nodeId: 'good-1', payload: '{"node_id": "good-1",', code: 'not_json' },
  { name: 'an array instead of an object', nodeId: 'good-1', payload: '[1,2,3]', code: 'not_object' },
  { name: 'wrong types', nodeId: 'good-1', payload: JSON.stringify({ ...good, capabilities: 'monitoring', ts: 'now' }), code: 'schema' },
  { name: 'missing fields', nodeId: 'good-1', payload: JSON.stringify({ node_id: 'good-1', capabilities: ['monitoring'] }), code: 'schema' },
  { name: 'node_id different from the topic', nodeId: 'good-1', payload: JSON.stringify({ ...good, node_id: 'someone-else' }), code: 'node_id_mismatch' },
  { name: 'a capability with a slash', nodeId: 'good-1', payload: JSON.stringify({ ...good, capabilities: ['a/b'] }), code: 'schema' },
  { name: 'a capability with # and +', nodeId: 'good-1', payload: JSON.stringify({ ...good, capabilities: ['a#', 'b+'] }), code: 'schema' },
  { name: 'a capability over 64 chars', nodeId: 'good-1', payload: JSON.stringify({ ...good, capabilities: [long] }), code: 'schema' },
  { name: 'more than 32 capabilities', nodeId: 'good-1', payload: JSON.stringify({ ...good, capabilities: Array.from({ length: 33 }, (_, i) => `c${i}`) }), code: 'schema' },
  { name: 'a node id with $ in the topic', nodeId: '$bad', payload: JSON.stringify({ ...good, node_id: '$bad' }), code: 'invalid_node_id' },
  { name: 'a node id over 64 chars', nodeId: long, payload: JSON.stringify({ ...good, node_id: long }), code: 'invalid_node_id' },
  { name: 'a payload over the size limit', nodeId: 'good-1', payload: JSON.stringify({ ...good, endpoint: 'x'.repeat(70_000) }), code: 'too_large' },
];

for (const c of cases) {
  test(`refused: ${c.name}`, (ctx) => withTimeout((async () => {
    const fed = (ctx.fed = await federation({ logger: capturingLogger(ctx.lines) }));
    const dev = await device(fed, 'good-1');
    const regTopic = fed.hub.topics.registration(c.nodeId);
    // A valid registration first, so we can check nothing of it is lost.
    await dev.publishAsync(fed.hub.topics.registration('good-1'), JSON.stringify(good), { qos: 1, retain: true });
    await waitFor(() => fed.hub.node('good-1')?.status === 'active');
    const before = JSON.stringify(fed.hub.node('good-1'));
    const errors = await collector(dev, `${fed.hub.topics.root}/hub/errors/+`);

    await dev.publishAsync(regTopic, c.payload, { qos: 1, retain: true });
    await waitFor(() => errors.length > 0, { label: 'error report' });

    const report = JSON.parse(errors[0]!.payload) as { code: string; reason: string; topic: string };
    assert.is(report.code, c.code);
    assert.ok(report.reason.length > 0);
    assert.is(fed.hub.counters().refusals[c.code as 'schema'], 1, 'counted once');
    const refusedLines = ctx.lines.filter((l) => l.msg === 'refused');
    assert.is(refusedLines.length, 1, "logged once");
    assert.is(refusedLines[0]!.code, c.code);
    assert.is(JSON.stringify(fed.hub.node('good-1')), before, 'registry untouched');
    if (c.code === 'invalid_node_id') assert.is(fed.hub.nodes().length, 1);

    // Never retained: a fresh subscriber sees the last valid registration (or nothing).
    const late = await device(fed, 'late');
    const retained = await retainedNow(late, regTopic);
    if (c.nodeId === 'good-1') {
      assert.is(retained.length, 1);
      assert.equal(JSON.parse(retained[0]!.payload), good);
    } else {
      assert.is(retained.length, 0);
    }

    // Everyone else is still served.
    const other = await device(fed, 'other-1');
    await other.publishAsync(fed.hub.topics.registration('other-1'), JSON.stringify(registration('other-1')), { qos: 1, retain: true });
    await waitFor(() => fed.hub.node('other-1')?.status === 'active', { label: 'others served' });
    await closeAll(dev, late, other);
  })(), 8000, c.name));
}

test('a refusal quoting hostile input stays within the error schema bounds', (ctx) => withTimeout((async () => {
  const fed = (ctx.fed = await federation());
  const dev = await device(fed, 'good-1');
  const errors = await collector(dev, fed.hub.topics.hubError('good-1'));
  const hostile: Record<string, unknown> = { ...good };
  for (let i = 0; i < 20; i += 1) hostile[`${'k'.repeat(3000)}${i}`] = 1;
  await dev.publishAsync(fed.hub.topics.registration('good-1'), JSON.stringify(hostile), { qos: 1, retain: true });
  await waitFor(() => errors.length === 1);
  const report = JSON.parse(errors[0]!.payload) as Record<string, unknown>;
  assert.is(report.code, 'schema');
  assert.ok(validators.hubError(report).ok, 'the report itself is valid');
  await closeAll(dev);
})(), 8000, 'hostile reason'));

test('a bad heartbeat and a bad status are refused and change nothing', (ctx) => withTimeout((async () => {
  const fed = (ctx.fed = await federation());
  const dev = await device(fed, 'good-1');
  await dev.publishAsync(fed.hub.topics.registration('good-1'), JSON.stringify(good), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('good-1')?.status === 'active');
  await dev.publishAsync(fed.hub.topics.heartbeat('good-1'), JSON.stringify({ seq: -1, ts: Date.now(), load: 'high' }));
  await dev.publishAsync(fed.hub.topics.status('good-1'), JSON.stringify({ state: 'sleeping', boot_id: good.boot_id, ts: Date.now() }), { qos: 1, retain: true });
  await waitFor(() => fed.hub.counters().refusals.schema === 2, { label: 'two refusals' });
  assert.is(fed.hub.node('good-1')?.status, 'active');
  assert.is(fed.hub.node('good-1')?.load, null);
  const late = await device(fed, 'late');
  const retained = await retainedNow(late, fed.hub.topics.status('good-1'));
  assert.is(retained.length, 0, 'bad status not retained');
  await closeAll(dev, late);
})(), 8000, 'bad heartbeat/status'));

test('an empty retained status clears the topic and is not a refusal', (ctx) => withTimeout((async () => {
  const fed = (ctx.fed = await federation());
  const dev = await device(fed, 'good-1');
  await dev.publishAsync(fed.hub.topics.registration('good-1'), JSON.stringify(good), { qos: 1, retain: true });
  await dev.publishAsync(fed.hub.topics.status('good-1'), JSON.stringify({ state: 'online', boot_id: good.boot_id, ts: Date.now() }), { qos: 1, retain: true });
  await dev.publishAsync(fed.hub.topics.status('good-1'), '', { qos: 1, retain: true });
  await waitFor(() => fed.hub.counters().messages.status === 2);
  assert.equal(fed.hub.counters().refusals, {});
  assert.is(fed.hub.node('good-1')?.status, 'active');
  await closeAll(dev);
})(), 8000, 'empty status'));

test('with an external broker (repair mode) a refused retained message is repaired once, without a loop', (ctx) => withTimeout((async () => {
  const fed = (ctx.fed = await federation({ hub: { repairRetained: true } }));
  const dev = await device(fed, 'good-1');
  await dev.publishAsync(fed.hub.topics.registration('good-1'), JSON.stringify(good), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('good-1')?.status === 'active');
  await dev.publishAsync(fed.hub.topics.status('good-1'), '{"state":', { qos: 1, retain: true });
  await dev.publishAsync(fed.hub.topics.registration('good-1'), '{"node_id":', { qos: 1, retain: true });
  await waitFor(() => fed.hub.counters().refusals.not_json === 2);
  // The repairs (the status cleared, the last valid registration put back) come back to the hub
  // after the refusals; a repair refused in turn would be counted as it is handled.
  await waitFor(() => fed.hub.counters().messages.status >= 1 && fed.hub.counters().messages.registration >= 2, { label: 'the repairs handled' });
  assert.is(fed.hub.counters().refusals.not_json, 2, 'repairs are not refused in turn');
  assert.is(fed.hub.node('good-1')?.status, 'active');
  const late = await device(fed, 'late');
  const retained = await collector(late, fed.hub.topics.registration('good-1'));
  await waitFor(() => retained.length === 1);
  assert.equal(JSON.parse(retained[0]!.payload).boot_id, good.boot_id);
  await closeAll(dev, late);
})(), 8000, 'repair'));

test('a packet over the broker limit cuts that connection only', (ctx) => withTimeout((async () => {
  const fed = (ctx.fed = await federation({ maxPacketBytes: 32 * 1024 }));
  const bad = await device(fed, 'big');
  const closed = new Promise<void>((resolve) => bad.once('close', () => resolve()));
  bad.publish(fed.hub.topics.registration('big'), Buffer.alloc(100 * 1024, 0x41), { qos: 0, retain: true });
  await withTimeout(closed, 2000, 'oversized client cut');
  assert.is(fed.broker!.stats.packetGuardDrops, 1);
  const other = await device(fed, 'other-1');
  await other.publishAsync(fed.hub.topics.registration('other-1'), JSON.stringify(registration('other-1')), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('other-1')?.status === 'active');
  assert.is(fed.hub.node('big'), undefined);
  await closeAll(bad, other);
})(), 8000, 'packet guard'));

test.run();
