import { connect as netConnect } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createAuthHooks, REFUSED_PUBLISH_SINK, type AuthHooks, type AuthHooksOptions } from '../broker/auth-hooks.js';
import type { EdgefedBroker } from '../broker/index.js';
import { jsonLogger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import { closed, collectMessages, NO_RECONNECT, nextMessage, roundTrip, startBroker } from './helpers/broker.js';
import { nextEvent } from './helpers/events.js';
import { frame } from './helpers/mqtt-bytes.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';
import { tokenKit, type TestClaims } from './helpers/tokens.js';

/*
 * The broker enforcing identities, end to end: a real aedes behind our hooks,
 * real mqtt.js clients over loopback TCP, tokens from auth/ (see helpers/tokens.ts).
 */

const t = topics();
const kit = await tokenKit();
const registration = (nodeId: string, capabilities: string[]) =>
  JSON.stringify({ node_id: nodeId, capabilities, boot_id: 'boot-1', ts: Date.now() });

interface Secured {
  broker: EdgefedBroker;
  hooks: AuthHooks;
  /** Every log line so far, parsed. */
  lines(): Array<Record<string, unknown>>;
  raw: string[];
  /** Connects with a token for `claims` (username = subject, client id = subject unless given). */
  as(claims: TestClaims, options?: IClientOptions): Promise<MqttClient>;
}

async function secureBroker(scope: Scope, options: Partial<AuthHooksOptions> = {}): Promise<Secured> {
  const raw: string[] = [];
  const logger = jsonLogger('debug', {}, { write: (line: string) => raw.push(line) });
  const hooks = createAuthHooks({ verifier: kit.verifier, logger, ...options });
  scope.defer(() => hooks.close());
  const broker = await startBroker(scope, {
    authenticate: hooks.authenticate,
    authorizePublish: hooks.authorizePublish,
    authorizeSubscribe: hooks.authorizeSubscribe,
  });
  const lines = () => raw.map((line) => JSON.parse(line) as Record<string, unknown>);
  return {
    broker, hooks, lines, raw,
    async as(claims, clientOptions = {}) {
      const token = await kit.sign(claims);
      const client = await mqtt.connectAsync(broker.url!, {
        ...NO_RECONNECT, clientId: claims.sub, username: claims.sub, password: token, ...clientOptions,
      });
      scope.defer(() => client.endAsync(true));
      return client;
    },
  };
}

/** The CONNACK code a connection attempt is refused with (0 if it was accepted). */
async function connackCode(scope: Scope, url: string, options: IClientOptions): Promise<number> {
  const client = mqtt.connect(url, { ...NO_RECONNECT, ...options });
  scope.defer(() => client.endAsync(true));
  const outcome = await withTimeout(Promise.race([
    nextEvent(client, 'connect').then(() => 0),
    nextEvent(client, 'error').then(([error]) => Number((error as { code?: unknown }).code)),
  ]), 2000, 'connack');
  return outcome;
}

/** Publishes `refused` then a `marker` the watcher may see: in order, so the refused one is known not delivered. */
async function assertDropped(
  watcher: MqttClient,
  publisher: MqttClient,
  refused: { topic: string; payload: string; retain?: boolean },
  marker: string,
  markerFrom: MqttClient = publisher,
): Promise<void> {
  const seen = collectMessages(watcher);
  const markerArrived = nextMessage(watcher, marker);
  // QoS 1: the PUBACK still comes (the drop is acknowledged), so this resolves.
  await publisher.publishAsync(refused.topic, refused.payload, { qos: 1, retain: refused.retain ?? false });
  await markerFrom.publishAsync(marker, 'marker', { qos: 1 });
  await markerArrived;
  assert.not.ok(seen.some((m) => m.topic === refused.topic), `${refused.topic} must not be delivered`);
  assert.ok(publisher.connected, 'the publisher stays connected');
}

/** The SUBACK return code for one filter (mqtt.js rejects on 0x80, with the SUBACK attached). */
function subackCode(client: MqttClient, filter: string): Promise<number | undefined> {
  return client.subscribeAsync(filter, { qos: 1 }).then(
    (granted) => granted[0]?.qos,
    (error: { packet?: { granted?: unknown[] } }) => Number(error.packet?.granted?.[0]),
  );
}

const AGENT: TestClaims = { role: 'agent', sub: 'edge-001', caps: ['monitoring'] };
const HUB: TestClaims = { role: 'hub', sub: 'hub' };
const OPERATOR: TestClaims = { role: 'operator', sub: 'alice' };

test('agent: its own registration passes; another node\'s, caps beyond the token, triggers and commands are dropped', bounded(async (scope) => {
  const s = await secureBroker(scope);
  const hub = await s.as(HUB, { clientId: 'hub-1' });
  await hub.subscribeAsync('edgefed/#', { qos: 1 });
  const agent = await s.as(AGENT);

  const own = nextMessage(hub, t.registration('edge-001'));
  await agent.publishAsync(t.registration('edge-001'), registration('edge-001', ['monitoring']), { qos: 1, retain: true });
  assert.is(JSON.parse((await own).payload).node_id, 'edge-001');

  const marker = t.heartbeat('edge-001');
  await assertDropped(hub, agent, { topic: t.registration('edge-002'), payload: registration('edge-002', ['monitoring']), retain: true }, marker);
  await assertDropped(hub, agent, { topic: t.registration('edge-001'), payload: registration('edge-001', ['monitoring', 'root-shell']), retain: true }, marker);
  await assertDropped(hub, agent, { topic: t.registration('edge-001'), payload: 'not json', retain: true }, marker);
  await assertDropped(hub, agent, { topic: t.trigger('monitoring'), payload: '{}' }, marker);
  await assertDropped(hub, agent, { topic: t.trigger('monitoring', 'edge-001'), payload: '{}' }, marker);
  await assertDropped(hub, agent, { topic: t.commands('edge-001'), payload: '{"command":"rebirth"}' }, marker);
  await assertDropped(hub, agent, { topic: t.hubStatus(), payload: '{}' }, marker);

  assert.equal(s.hooks.stats.publishRefusals, { not_own_node: 4, caps_exceeded: 1, registration_unreadable: 1, own_commands: 1 });
  // The refused retained ones were not kept either: a late reader sees the valid registration only.
  const late = await s.as(OPERATOR, { clientId: 'late-reader' });
  const kept = collectMessages(late);
  await late.subscribeAsync(t.allNodes('registration'), { qos: 1 });
  await roundTrip(late, hub, t.hubStatus(), 'sync');
  assert.equal(kept.filter((m) => m.retain).map((m) => JSON.parse(m.payload).capabilities), [['monitoring']]);
}));

test('agent: an empty retained registration (deregistration) passes', bounded(async (scope) => {
  const s = await secureBroker(scope);
  const hub = await s.as(HUB, { clientId: 'hub-1' });
  await hub.subscribeAsync(t.allNodes('registration'), { qos: 1 });
  const agent = await s.as(AGENT);
  const gone = nextMessage(hub, t.registration('edge-001'));
  await agent.publishAsync(t.registration('edge-001'), '', { qos: 1, retain: true });
  assert.is((await gone).payload, '');
  assert.equal(s.hooks.stats.publishRefusals, {});
}));

test('agent: a subscription to # gets SUBACK 0x80; the connection stays up and still works', bounded(async (scope) => {
  const s = await secureBroker(scope);
  const agent = await s.as(AGENT);
  assert.is(await subackCode(agent, '#'), 0x80);
  assert.ok(agent.connected);
  await roundTrip(agent, agent, t.status('edge-001'), 'still served');
  assert.equal(s.hooks.stats.subscribeRefusals, { not_granted: 1 });
  assert.ok(s.lines().some((l) => l.msg === 'subscription refused' && l.filter === '#' && l.subject === 'edge-001'));
}));

test('agent: its triggers and commands are readable; another node\'s addressed trigger and wpk/{c}/# are not', bounded(async (scope) => {
  const s = await secureBroker(scope);
  const hub = await s.as(HUB, { clientId: 'hub-1' });
  const agent = await s.as(AGENT);
  for (const filter of [t.trigger('monitoring'), t.trigger('monitoring', 'edge-001'), t.commands('edge-001'), t.hubStatus(), t.hubError('edge-001'), 'edgefed/v1/nodes/edge-001/#']) {
    assert.is(await subackCode(agent, filter), 1, `${filter} must be granted`);
  }
  for (const filter of [t.trigger('monitoring', 'edge-002'), 'edgefed/v1/wpk/monitoring/#', 'edgefed/v1/wpk/monitoring/trigger/+', t.trigger('other-cap'), 'edgefed/v1/nodes/+/commands', 'edgefed/#']) {
    assert.is(await subackCode(agent, filter), 0x80, `${filter} must be refused`);
  }
  const addressed = nextMessage(agent, t.trigger('monitoring', 'edge-001'));
  await hub.publishAsync(t.trigger('monitoring', 'edge-001'), '{"wpk_id":"w1"}', { qos: 1 });
  assert.is((await addressed).payload, '{"wpk_id":"w1"}');
  const command = nextMessage(agent, t.commands('edge-001'));
  await hub.publishAsync(t.commands('edge-001'), '{"command":"rebirth"}', { qos: 1 });
  assert.ok((await command).payload.includes('rebirth'));
  assert.is(s.hooks.stats.subscribeRefusals.not_granted, 6);
}));

test('operator: subscribes to edgefed/# but publishes nothing', bounded(async (scope) => {
  const s = await secureBroker(scope);
  const operator = await s.as(OPERATOR, { clientId: 'any-id-at-all', username: 'operator' });
  const hub = await s.as(HUB, { clientId: 'hub-1' });
  await roundTrip(operator, hub, t.hubStatus(), 'watched');
  assert.is(await subackCode(operator, '$SYS/#'), 0x80, 'nothing outside the namespace');
  await hub.subscribeAsync('edgefed/#', { qos: 1 });
  await assertDropped(hub, operator, { topic: t.commands('edge-001'), payload: '{}' }, t.hubStatus(), hub);
  await assertDropped(hub, operator, { topic: t.registration('alice'), payload: registration('alice', ['monitoring']) }, t.hubStatus(), hub);
  assert.equal(s.hooks.stats.publishRefusals, { read_only_role: 2 });
}));

test('hub: publishes triggers, commands and its status; subscribes to anything under edgefed/', bounded(async (scope) => {
  const s = await secureBroker(scope);
  const hub = await s.as(HUB, { clientId: 'edgefed-hub', username: 'hub' });
  const watcher = await s.as(OPERATOR, { clientId: 'watcher' });
  await watcher.subscribeAsync('edgefed/#', { qos: 1 });
  for (const topic of [t.trigger('monitoring'), t.trigger('monitoring', 'edge-001'), t.commands('edge-001'), t.hubStatus(), t.hubError('edge-001'), t.registration('edge-001')]) {
    const received = nextMessage(watcher, topic);
    await hub.publishAsync(topic, '{}', { qos: 1 });
    await received;
  }
  await hub.subscribeAsync(['edgefed/#', 'edgefed/v1/nodes/+/heartbeat'], { qos: 1 });
  assert.equal(s.hooks.stats.publishRefusals, {});
  assert.equal(s.hooks.stats.subscribeRefusals, {});
}));

test('an agent token with another client id or username is refused at CONNACK', bounded(async (scope) => {
  const s = await secureBroker(scope, { warnIntervalMs: 0 });
  const token = await kit.sign(AGENT);
  assert.is(await connackCode(scope, s.broker.url!, { clientId: 'edge-002', username: 'edge-001', password: token }), 5);
  assert.is(await connackCode(scope, s.broker.url!, { clientId: 'edge-001', username: 'edge-002', password: token }), 4);
  assert.is(await connackCode(scope, s.broker.url!, { clientId: 'edge-001', username: 'operator', password: token }), 4, 'agents are named by node id');
  // A wildcard node id could read every node: the verifier refuses the claim (the ACL would too, see the rules tests).
  const badAgent = await kit.signRaw({ role: 'agent', sub: '+', caps: ['monitoring'] });
  assert.is(await connackCode(scope, s.broker.url!, { clientId: '+', username: '+', password: badAgent }), 5);
  assert.equal(s.hooks.stats.authFailures, { client_id_mismatch: 1, username_mismatch: 2, bad_claims: 1 });
}));

test('expired, foreign-signed, garbage and missing tokens: CONNACK 4 or 5, logged by code, never the token', bounded(async (scope) => {
  const s = await secureBroker(scope, { warnIntervalMs: 0 });
  const url = s.broker.url!;
  const expired = await kit.signRaw({ ...AGENT, ttlSeconds: -120 });
  const foreign = await kit.signForeign(AGENT);
  const garbage = 'not-a-jwt-at-all-but-a-long-secret-looking-string-0123456789abcdef';
  assert.is(await connackCode(scope, url, { clientId: 'edge-001', username: 'edge-001', password: expired }), 5);
  assert.is(await connackCode(scope, url, { clientId: 'edge-001', username: 'edge-001', password: foreign }), 4);
  assert.is(await connackCode(scope, url, { clientId: 'edge-001', username: 'edge-001', password: garbage }), 4);
  assert.is(await connackCode(scope, url, { clientId: 'edge-001', username: 'edge-001' }), 4);
  assert.is(await connackCode(scope, url, { clientId: 'edge-001', username: expired, password: expired }), 5, 'a token pasted as username too');
  assert.equal(s.hooks.stats.authFailures, { expired: 2, bad_signature: 1, malformed: 1, no_credentials: 1 });
  const refusals = s.lines().filter((l) => l.msg === 'connection refused');
  assert.equal(refusals.map((l) => l.code), ['expired', 'bad_signature', 'malformed', 'no_credentials', 'expired']);
  for (const secret of [expired, foreign, garbage, expired.split('.')[2]!]) {
    assert.not.ok(s.raw.some((line) => line.includes(secret)), 'no log line holds a token');
  }
}));

/** A raw CONNECT with username and password: cheaper than 1,000 mqtt.js clients. */
function connectWithPassword(clientId: string, username: string, password: string): Buffer {
  const field = (value: string) => {
    const bytes = Buffer.from(value);
    return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes]);
  };
  const variableHeader = Buffer.concat([field('MQTT'), Buffer.from([4, 0xc2, 0, 60])]); // username, password, clean
  return frame(0x10, Buffer.concat([variableHeader, field(clientId), field(username), field(password)]));
}

/** Resolves with the CONNACK return code the broker answered before closing. */
function rawAttempt(port: number, packet: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let answer = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => (answer = Buffer.concat([answer, chunk])));
    socket.on('close', () => (answer.length >= 4 ? resolve(answer[3]!) : reject(new Error('closed without CONNACK'))));
    socket.write(packet);
  });
}

test('1,000 wrong passwords in a row: the broker stays up, serves others meanwhile, and warns once per interval', bounded(async (scope) => {
  const s = await secureBroker(scope); // default interval: 10 s, longer than this test
  const hub = await s.as(HUB, { clientId: 'hub-1' });
  const agent = await s.as(AGENT);
  await hub.subscribeAsync(t.heartbeat('edge-001'), { qos: 1 });
  const attack = (async () => {
    const codes: number[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const packets = Array.from({ length: 100 }, (_, i) => connectWithPassword(`edge-${batch}-${i}`, 'edge-001', `wrong-${batch}-${i}`));
      codes.push(...(await Promise.all(packets.map((p) => rawAttempt(s.broker.port!, p)))));
    }
    return codes;
  })();
  let served = 0;
  let attacking = true;
  void attack.finally(() => (attacking = false));
  while (attacking) {
    await roundTrip(hub, agent, t.heartbeat('edge-001'), `beat ${served}`);
    served += 1;
  }
  const codes = await attack;
  assert.is(codes.length, 1000);
  assert.ok(codes.every((code) => code === 4), 'each one answered 4');
  assert.ok(served > 0, 'the good client was served during the storm');
  assert.is(s.hooks.stats.authFailures.malformed, 1000);
  assert.is(s.lines().filter((l) => l.level === 40).length, 1, 'one warn line during the interval');
  s.hooks.close(); // ends the interval: the summary of the rest
  const warns = s.lines().filter((l) => l.level === 40);
  assert.is(warns.length, 2);
  assert.is(warns[1]!.suppressed, 999);
  assert.equal(warns[1]!.byKey, { malformed: 999 });
  const newcomer = await s.as({ ...AGENT, sub: 'edge-002' });
  await roundTrip(newcomer, newcomer, t.heartbeat('edge-002'), 'after the storm');
}, { timeoutMs: 30_000 }));

test('a client id is taken over only with a valid token for it; the first session stays otherwise', bounded(async (scope) => {
  const s = await secureBroker(scope, { warnIntervalMs: 0 });
  const first = await s.as(AGENT);
  let firstClosed = false;
  first.on('close', () => (firstClosed = true));
  const url = s.broker.url!;
  const foreign = await kit.signForeign(AGENT);
  assert.is(await connackCode(scope, url, { clientId: 'edge-001', username: 'edge-001', password: foreign }), 4);
  assert.is(await connackCode(scope, url, { clientId: 'edge-001', username: 'edge-001', password: 'garbage' }), 4);
  assert.is(await connackCode(scope, url, { clientId: 'edge-001', username: 'edge-001' }), 4);
  const operatorToken = await kit.sign(OPERATOR);
  assert.is(await connackCode(scope, url, { clientId: 'edge-001', username: 'operator', password: operatorToken }), 5, 'a valid token, but not one for that id');
  assert.is(s.hooks.stats.authFailures.takeover_refused, 1);
  assert.not.ok(firstClosed, 'the first session was not touched');
  await roundTrip(first, first, t.status('edge-001'), 'still mine');

  // The node itself, reconnecting with a valid token: the takeover MQTT prescribes [MQTT-3.1.4-2].
  const firstGone = closed(first);
  const second = await s.as(AGENT);
  await firstGone;
  await roundTrip(second, second, t.status('edge-001'), 'taken over');
}));

test('an allowed publish goes on to the next hook (the retain gate); a refused one never reaches it', bounded(async (scope) => {
  const reached: string[] = [];
  const s = await secureBroker(scope, {
    next: (_client, packet, done) => {
      reached.push(packet.topic);
      done(null);
    },
  });
  const agent = await s.as(AGENT);
  await agent.publishAsync(t.heartbeat('edge-001'), '{}', { qos: 1 });
  await agent.publishAsync(t.heartbeat('edge-002'), '{}', { qos: 1 });
  await agent.publishAsync(t.trigger('monitoring'), '{}', { qos: 0 });
  await agent.publishAsync(t.status('edge-001'), '{}', { qos: 1 });
  assert.equal(reached, [t.heartbeat('edge-001'), t.status('edge-001')]);
  assert.not.ok(reached.includes(REFUSED_PUBLISH_SINK));
}));

test('$SYS stays reserved: a publish there still closes the client, as aedes does by default', bounded(async (scope) => {
  const s = await secureBroker(scope);
  const hub = await s.as(HUB, { clientId: 'hub-1' });
  hub.on('error', () => undefined);
  const gone = closed(hub);
  hub.publish('$SYS/forged', 'x', { qos: 1 });
  await gone;
}));

test('a Will is checked like a publish: its own status goes out, another node\'s does not', bounded(async (scope) => {
  const s = await secureBroker(scope);
  const watcher = await s.as(OPERATOR, { clientId: 'watcher' });
  await watcher.subscribeAsync('edgefed/#', { qos: 1 });
  const seen = collectMessages(watcher);
  const honest = await s.as(AGENT, { will: { topic: t.status('edge-001'), payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: false } });
  const liar = await s.as({ ...AGENT, sub: 'edge-009' }, { will: { topic: t.status('edge-002'), payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: false } });
  const lost = nextMessage(watcher, t.status('edge-001'));
  liar.stream.destroy();
  honest.stream.destroy();
  await lost;
  await waitFor(() => s.hooks.stats.publishRefusals.not_own_node === 1, { label: 'the forged Will refused' });
  await roundTrip(watcher, await s.as(HUB, { clientId: 'hub-1' }), t.hubStatus(), 'after the wills');
  assert.not.ok(seen.some((m) => m.topic === t.status('edge-002')));
}));

test.run();
