import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Federation } from '../server/federation.js';
import { closeAll, collector, device, federation, registration } from './helpers/federation.js';
import { retainedNow } from './helpers/broker.js';
import { waitFor, withTimeout } from './helpers/time.js';

const test = suite<{ fed?: Federation }>('hub: registration and presence');

test.after.each(async (ctx) => {
  await ctx.fed?.stop();
  ctx.fed = undefined;
});

const T = (label: string, fn: (ctx: { fed?: Federation }) => Promise<void>) =>
  test(label, (ctx) => withTimeout(fn(ctx), 8000, label));

T('a plain MQTT device joins with one retained registration', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const dev = await device(fed, 'edge-node-001');
  const reg = registration('edge-node-001', { capabilities: ['monitoring', 'basic-actions'], labels: { site: 'berlin' }, endpoint: 'http://edge-node-001:8040' });
  await dev.publishAsync(fed.hub.topics.registration('edge-node-001'), JSON.stringify(reg), { qos: 1, retain: true });
  const node = await waitFor(() => fed.hub.node('edge-node-001'), { timeoutMs: 1000, label: 'node in registry' });
  assert.is(node.status, 'active');
  assert.equal(node.capabilities, ['monitoring', 'basic-actions']);
  assert.equal(node.labels, { site: 'berlin' });
  assert.is(node.endpoint, 'http://edge-node-001:8040');
  assert.ok(node.id.startsWith('reg_'));
  assert.type(node.last_seen, 'number');
  await closeAll(dev);
});

T('the Last Will marks the node offline; a will of an older boot is ignored', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const topic = fed.hub.topics.status('n1');
  const will = (boot: string) => ({ topic, payload: Buffer.from(JSON.stringify({ state: 'offline', reason: 'lost', boot_id: boot, ts: Date.now() })), qos: 1 as const, retain: true });
  const old = await device(fed, 'n1-old', { will: will('boot-old') });
  const dev = await device(fed, 'n1', { will: will('boot-n1') });
  await dev.publishAsync(fed.hub.topics.registration('n1'), JSON.stringify(registration('n1')), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('n1')?.status === 'active');
  old.stream.destroy(); // the older session dies abruptly: its will must not touch the new one
  await waitFor(() => fed.hub.counters().ignored.older_session >= 1, { label: 'older will ignored' });
  assert.is(fed.hub.node('n1')?.status, 'active');
  dev.stream.destroy();
  await waitFor(() => fed.hub.node('n1')?.status === 'offline', { label: 'offline by will' });
  assert.is(fed.hub.node('n1')?.status_reason, 'lost');
  await closeAll(old, dev);
});

T('a node silent for 3 heartbeat intervals goes stale; a heartbeat revives it', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const dev = await device(fed, 'hb1');
  await dev.publishAsync(fed.hub.topics.registration('hb1'), JSON.stringify(registration('hb1', { heartbeat_interval_ms: 100 })), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('hb1')?.status === 'active');
  await waitFor(() => fed.hub.node('hb1')?.status === 'stale', { timeoutMs: 2000, label: 'stale' });
  assert.is(fed.hub.node('hb1')?.status_reason, 'no_heartbeat');
  await dev.publishAsync(fed.hub.topics.heartbeat('hb1'), JSON.stringify({ seq: 1, ts: Date.now(), load: 0.5, running_wpks: 2 }));
  await waitFor(() => fed.hub.node('hb1')?.status === 'active', { label: 'active again' });
  assert.is(fed.hub.node('hb1')?.load, 0.5);
  assert.is(fed.hub.node('hb1')?.running_wpks, 2);
  await closeAll(dev);
});

T('a node without a heartbeat interval is never marked stale by silence', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const dev = await device(fed, 'quiet');
  await dev.publishAsync(fed.hub.topics.registration('quiet'), JSON.stringify(registration('quiet')), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('quiet')?.status === 'active');
  // A node registered after it with a 100 ms interval goes stale: the sweeps that found it (every 50 ms) passed over 'quiet' too.
  await dev.publishAsync(fed.hub.topics.registration('beater'), JSON.stringify(registration('beater', { heartbeat_interval_ms: 100 })), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('beater')?.status === 'stale', { label: 'the control node stale' });
  assert.is(fed.hub.node('quiet')?.status, 'active');
  await closeAll(dev);
});

T('an empty retained registration deregisters the node', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const dev = await device(fed, 'bye');
  const topic = fed.hub.topics.registration('bye');
  await dev.publishAsync(topic, JSON.stringify(registration('bye')), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('bye')?.status === 'active');
  await dev.publishAsync(topic, '', { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('bye')?.status === 'deregistered', { label: 'deregistered' });
  const late = await device(fed, 'late-sub');
  const seen = await retainedNow(late, topic);
  assert.is(seen.length, 0, 'nothing retained after deregistration');
  await closeAll(dev, late);
});

T('a heartbeat from an unknown node gets a rebirth command', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const dev = await device(fed, 'ghost');
  const commands = await collector(dev, fed.hub.topics.commands('ghost'));
  await dev.publishAsync(fed.hub.topics.heartbeat('ghost'), JSON.stringify({ seq: 1, ts: Date.now() }));
  await waitFor(() => commands.length > 0, { label: 'rebirth command' });
  assert.is(JSON.parse(commands[0]!.payload).command, 'rebirth');
  assert.is(fed.hub.node('ghost'), undefined);
  await closeAll(dev);
});

T('a heartbeat from a deregistered node does not ask it to re-register', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const dev = await device(fed, 'left');
  // One collector sees every message of the client: tell the two topics apart.
  const seen = await collector(dev, fed.hub.topics.commands('left'));
  await dev.subscribeAsync(fed.hub.topics.commands('ghost-after'), { qos: 1 });
  const commands = { get length() { return seen.filter((m) => m.topic === fed.hub.topics.commands('left')).length; } };
  const markers = { get length() { return seen.filter((m) => m.topic === fed.hub.topics.commands('ghost-after')).length; } };
  await dev.publishAsync(fed.hub.topics.registration('left'), JSON.stringify(registration('left')), { qos: 1, retain: true });
  await dev.publishAsync(fed.hub.topics.registration('left'), '', { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('left')?.status === 'deregistered');
  await dev.publishAsync(fed.hub.topics.heartbeat('left'), JSON.stringify({ seq: 1, ts: Date.now() }));
  // An unknown node's beat right after does get a rebirth: the hub handles beats in order and
  // publishes its commands at once, so a command for 'left' would have come before this one.
  await dev.publishAsync(fed.hub.topics.heartbeat('ghost-after'), JSON.stringify({ seq: 1, ts: Date.now() }));
  await waitFor(() => markers.length > 0, { label: 'rebirth of the node after' });
  assert.is(fed.hub.counters().messages.heartbeat, 2);
  assert.is(commands.length, 0);
  assert.is(fed.hub.node('left')?.status, 'deregistered');
  await closeAll(dev);
});

T('the hub announces itself online (retained) and offline/shutdown on stop', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const op = await device(fed, 'operator');
  const seen = await collector(op, fed.hub.topics.hubStatus());
  await waitFor(() => seen.length > 0);
  const online = JSON.parse(seen[0]!.payload);
  assert.is(online.state, 'online');
  assert.is(online.boot_id, fed.hub.bootId);
  await fed.hub.stop();
  await waitFor(() => seen.some((m) => JSON.parse(m.payload).state === 'offline'), { label: 'hub offline' });
  const offline = JSON.parse(seen.at(-1)!.payload);
  assert.is(offline.reason, 'shutdown');
  await closeAll(op);
});

T('a device re-publishing the very same registration is alive again', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const reg = JSON.stringify(registration('fixed', { ts: 1 }));
  const will = { topic: fed.hub.topics.status('fixed'), payload: Buffer.from(JSON.stringify({ state: 'offline', reason: 'lost', boot_id: 'boot-fixed', ts: 1 })), qos: 1 as const, retain: true };
  const first = await device(fed, 'fixed', { will });
  await first.publishAsync(fed.hub.topics.registration('fixed'), reg, { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('fixed')?.status === 'active');
  first.stream.destroy();
  await waitFor(() => fed.hub.node('fixed')?.status === 'offline');
  const second = await device(fed, 'fixed', { will });
  await second.publishAsync(fed.hub.topics.registration('fixed'), reg, { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('fixed')?.status === 'active', { label: 'active after identical re-publication' });
  await closeAll(first, second);
});

T('a will held from before a live registration does not override it', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const will = { topic: fed.hub.topics.status('early'), payload: Buffer.from(JSON.stringify({ state: 'offline', reason: 'lost', boot_id: 'boot-early', ts: 1 })), qos: 1 as const, retain: true };
  const session = await device(fed, 'early-session', { will });
  session.stream.destroy();
  await waitFor(() => fed.hub.counters().ignored.unknown_node >= 1, { label: 'early will seen' });
  const dev = await device(fed, 'early');
  await dev.publishAsync(fed.hub.topics.registration('early'), JSON.stringify(registration('early')), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('early') !== undefined);
  // Another node's registration after it: once the hub has it, it has handled everything the first one set off.
  await dev.publishAsync(fed.hub.topics.registration('early-after'), JSON.stringify(registration('early-after')), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('early-after') !== undefined, { label: 'the registration after' });
  assert.is(fed.hub.node('early')?.status, 'active');
  await closeAll(session, dev);
});

test.run();
