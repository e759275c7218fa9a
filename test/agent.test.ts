/**
 * The edge agent against a real (minimal, self-started) aedes over TCP.
 * The agent's payloads are checked against the JSON Schemas the hub uses, so
 * the agent's hand-written bounds cannot drift from the contract unnoticed.
 */
import net from 'node:net';
import os from 'node:os';
import { Aedes, type AedesOptions } from 'aedes';
import { connect, connectAsync, MqttClient, type IClientOptions } from 'mqtt';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { backoffDelay, startAgent, type Agent, type AgentOptions } from '../agent/index.js';
import { parseCommand, parseHubStatus } from '../agent/commands.js';
import { attachBackoff } from '../agent/connection.js';
import { jitteredInterval } from '../agent/payloads.js';
import { silentLogger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import { VERSION } from '../lib/version.js';
import { validators } from '../schemas/index.js';
import { retainedNow } from './helpers/broker.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';
import { capturingLogger, type LogLine } from './helpers/logs.js';

const t = topics();

interface TestBroker { broker: Aedes; port: number; close(): Promise<void> }

/** aedes on 127.0.0.1; `port` 0 picks a free one, a number restarts on that port. */
async function startBroker(scope: Scope, port = 0, opts: AedesOptions = {}): Promise<TestBroker> {
  const broker = await Aedes.createBroker(opts);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })();
    return closed;
  };
  scope.defer(close);
  return { broker, port: (server.address() as net.AddressInfo).port, close };
}

interface Seen { topic: string; body: Record<string, unknown> | null; retain: boolean }

/** A plain MQTT client recording everything below the root (reconnects quickly across broker restarts). */
async function observe(scope: Scope, port: number): Promise<{ client: MqttClient; seen: Seen[]; on(topic: string): Seen[] }> {
  const client = connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 50, clientId: `observer-${Math.random().toString(36).slice(2)}` });
  scope.defer(() => client.endAsync(true));
  const seen: Seen[] = [];
  client.on('message', (topic, payload, packet) => {
    let body: Record<string, unknown> | null = null;
    try {
      body = JSON.parse(payload.toString()) as Record<string, unknown>;
    } catch {
      // the tests publish garbage on purpose; record it as null
    }
    seen.push({ topic, body, retain: packet.retain });
  });
  await client.subscribeAsync(t.everything(), { qos: 1 });
  return { client, seen, on: (topic) => seen.filter((m) => m.topic === topic) };
}

interface TestAgent { agent: Agent; logs: LogLine[] }

async function agentOn(scope: Scope, port: number, extra: Partial<AgentOptions> = {}): Promise<TestAgent> {
  const logs: LogLine[] = [];
  const agent = await startAgent({
    nodeId: 'edge-001',
    capabilities: ['monitoring', 'basic-actions'],
    brokerUrl: `mqtt://127.0.0.1:${port}`,
    labels: { site: 'berlin' },
    endpoint: 'http://edge-001:8040',
    heartbeatIntervalMs: 100,
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
    logger: capturingLogger(logs),
    ...extra,
  });
  scope.defer(() => agent.stop());
  return { agent, logs };
}

const connected = (agent: Agent) => waitFor(() => agent.connected, { label: 'agent connected' });
const last = (list: Seen[]) => list[list.length - 1]?.body;

let probes = 0;

/**
 * Proof that the agent has handled everything the observer sent it so far,
 * and that the observer has everything the agent published meanwhile: a
 * trigger of an action the agent lacks comes back `rejected`, after both (one
 * ordered connection each way). Replaces "wait a while and see that nothing
 * came".
 */
async function caughtUp(obs: { client: MqttClient; seen: Seen[] }): Promise<void> {
  const wpkId = `wpk_probe${(probes += 1)}`;
  const now = Date.now();
  const trigger = { wpk_id: wpkId, capability: 'monitoring', action: 'no-such-action', params: {}, mode: 'all', attempt: 1, created_at: now, deadline: now + 60_000 };
  await obs.client.publishAsync(t.trigger('monitoring'), JSON.stringify(trigger), { qos: 1 });
  await waitFor(() => obs.seen.some((m) => m.body?.wpk_id === wpkId && m.body.state === 'rejected'), { label: `probe ${wpkId} rejected` });
}

/** The retained messages on `topic` now, read by a fresh client (see retainedNow). */
async function retainedOn(port: number, topic: string): Promise<Seen[]> {
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
  try {
    return (await retainedNow(client, topic)).map((m) => ({ topic: m.topic, body: JSON.parse(m.payload) as Record<string, unknown>, retain: m.retain }));
  } finally {
    await client.endAsync(true);
  }
}

const lifecycle = suite('agent lifecycle');

lifecycle('publishes a retained registration, then status online, on connect', bounded(async (scope) => {
  const { port } = await startBroker(scope);
  const before = Date.now();
  const { agent } = await agentOn(scope, port, { concurrency: 2 });
  await connected(agent);
  const obs = await observe(scope, port); // subscribes afterwards: it can only see retained copies
  const reg = await waitFor(() => obs.on(t.registration('edge-001'))[0], { label: 'registration' });
  const status = await waitFor(() => obs.on(t.status('edge-001'))[0], { label: 'status' });
  assert.ok(reg.retain && status.retain, 'both retained');
  assert.equal(validators.registration(reg.body).ok, true, JSON.stringify(validators.registration(reg.body)));
  assert.equal(validators.status(status.body).ok, true);
  const r = reg.body!;
  assert.equal(r.node_id, 'edge-001');
  assert.equal(r.capabilities, ['monitoring', 'basic-actions']);
  assert.equal(r.boot_id, agent.bootId);
  assert.equal(r.labels, { site: 'berlin' });
  assert.equal(r.endpoint, 'http://edge-001:8040');
  assert.equal(r.agent, { name: 'edgefed-agent', version: VERSION });
  assert.equal((r.hardware as { arch: string }).arch, os.arch());
  assert.equal(r.heartbeat_interval_ms, 100);
  assert.equal(r.max_concurrency, 2);
  assert.ok((r.ts as number) >= before && (r.ts as number) <= Date.now());
  assert.equal(status.body, { state: 'online', boot_id: agent.bootId, ts: r.ts, session: 1 }, 'the first connection of this boot');
}));

lifecycle('sends QoS 0 heartbeats with increasing seq, not retained', bounded(async (scope) => {
  const { port } = await startBroker(scope);
  const obs = await observe(scope, port);
  const { agent } = await agentOn(scope, port);
  const beats = await waitFor(() => { const b = obs.on(t.heartbeat('edge-001')); return b.length >= 3 ? b : undefined; }, { label: '3 heartbeats' });
  assert.equal(beats.map((b) => b.body!.seq), [1, 2, 3]);
  for (const b of beats) {
    assert.equal(b.retain, false);
    assert.equal(validators.heartbeat(b.body).ok, true);
    assert.equal(b.body!.running_wpks, 0);
  }
  assert.ok(agent.connected);
}));

lifecycle('the broker publishes the will (offline/lost, same boot_id) when the connection drops; the agent comes back', bounded(async (scope) => {
  const { port } = await startBroker(scope);
  const obs = await observe(scope, port);
  const sockets: net.Socket[] = [];
  // The test owns the transport, so it can cut it the way a network would.
  const connectVia = (opts: IClientOptions) => new MqttClient(() => {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    return socket;
  }, opts);
  const { agent } = await agentOn(scope, port, { connect: connectVia });
  const statusTopic = t.status('edge-001');
  await waitFor(() => obs.on(statusTopic).length === 1, { label: 'online' });
  const disconnects: number[] = [];
  agent.on('disconnect', () => disconnects.push(Date.now()));
  sockets[0]!.destroy();
  const will = await waitFor(() => obs.on(statusTopic).find((m) => m.body?.state === 'offline'), { label: 'will' });
  assert.equal(will.body!.reason, 'lost');
  assert.equal(will.body!.boot_id, agent.bootId);
  assert.equal(validators.status(will.body).ok, true);
  assert.equal(disconnects.length, 1);
  // Re-birth after the reconnect: the same boot, online again, registration re-sent.
  await waitFor(() => last(obs.on(statusTopic))?.state === 'online', { label: 'online again' });
  assert.equal(last(obs.on(statusTopic))!.boot_id, agent.bootId);
  assert.equal(obs.on(t.registration('edge-001')).length, 2);
  assert.equal(sockets.length, 2);
  // Each CONNECT carries a will stamped with its own time, so the hub can order it after older births.
  sockets[1]!.destroy();
  const second = await waitFor(() => obs.on(statusTopic).filter((m) => m.body?.reason === 'lost')[1], { label: 'second will' });
  assert.ok((second.body!.ts as number) > (will.body!.ts as number));
}));

lifecycle('rebirth command re-publishes registration and status with the same boot_id and a newer ts', bounded(async (scope) => {
  const { port } = await startBroker(scope);
  const obs = await observe(scope, port);
  const { agent } = await agentOn(scope, port);
  const regTopic = t.registration('edge-001');
  const first = await waitFor(() => obs.on(regTopic)[0]?.body, { label: 'first registration' });
  await obs.client.publishAsync(t.commands('edge-001'), JSON.stringify({ command: 'rebirth', ts: Date.now() }), { qos: 1 });
  const second = await waitFor(() => obs.on(regTopic)[1]?.body, { label: 'second registration' });
  assert.equal(second.boot_id, agent.bootId);
  assert.ok((second.ts as number) > (first.ts as number));
  await waitFor(() => last(obs.on(t.status('edge-001')))?.ts === second.ts, { label: 'status online with the new ts' });
  // The bare form an operator would type with mosquitto_pub works too.
  await obs.client.publishAsync(t.commands('edge-001'), '{"command":"rebirth"}', { qos: 1 });
  await waitFor(() => obs.on(regTopic).length === 3, { label: 'third registration' });
}));

lifecycle('re-announces when the hub restarts (new hub boot_id), not when it first appears', bounded(async (scope) => {
  const { port } = await startBroker(scope);
  const obs = await observe(scope, port);
  await agentOn(scope, port);
  const regTopic = t.registration('edge-001');
  await waitFor(() => obs.on(regTopic).length === 1, { label: 'registration' });
  const hub = (bootId: string, state = 'online') => obs.client.publishAsync(t.hubStatus(), JSON.stringify({ state, boot_id: bootId, ts: Date.now() }), { qos: 1, retain: true });
  await hub('hub-boot-a');
  await caughtUp(obs);
  assert.equal(obs.on(regTopic).length, 1, 'the first hub seen is not a restart');
  await hub('hub-boot-a', 'offline');
  await hub('hub-boot-b');
  await waitFor(() => obs.on(regTopic).length === 2, { label: 're-announce after hub restart' });
  // The restarted hub's rebirth request that follows is already answered.
  await obs.client.publishAsync(t.commands('edge-001'), JSON.stringify({ command: 'rebirth', ts: Date.now() }), { qos: 1 });
  await caughtUp(obs);
  assert.equal(obs.on(regTopic).length, 2, 'no second announcement for the same hub restart');
}));

lifecycle('ignores malformed and unknown commands with a warning and keeps working', bounded(async (scope) => {
  const { port } = await startBroker(scope);
  const obs = await observe(scope, port);
  const { agent, logs } = await agentOn(scope, port);
  await waitFor(() => obs.on(t.registration('edge-001')).length === 1, { label: 'registration' });
  for (const bad of ['not json', '[]', '{"command":"explode"}', '{"command":"cancel"}', '{"command":"rebirth","ts":"soon"}', 'x'.repeat(70_000)]) {
    await obs.client.publishAsync(t.commands('edge-001'), bad, { qos: 1 });
  }
  await obs.client.publishAsync(t.hubStatus(), '{"state":"sleepy"}', { qos: 1 });
  await waitFor(() => logs.filter((l) => l.level === 40 && /malformed/.test(String(l.msg))).length === 7, { label: '7 warnings' });
  // A well-formed cancel of an execution this agent is not running is noted and changes nothing.
  await obs.client.publishAsync(t.commands('edge-001'), JSON.stringify({ command: 'cancel', wpk_id: 'wpk_1', attempt: 1, ts: 1 }), { qos: 1 });
  await waitFor(() => logs.some((l) => l.command === 'cancel' && l.wpk_id === 'wpk_1' && /not running here/.test(String(l.msg))), { label: 'cancel of nothing' });
  await obs.client.publishAsync(t.commands('edge-001'), '{"command":"rebirth"}', { qos: 1 });
  await waitFor(() => obs.on(t.registration('edge-001')).length === 2, { label: 'still answers rebirth' });
  assert.ok(agent.connected);
}));

lifecycle('re-registers after a broker restart (the new broker has no retained state)', bounded(async (scope) => {
  const first = await startBroker(scope);
  const { agent } = await agentOn(scope, first.port);
  await connected(agent);
  const events: string[] = [];
  agent.on('disconnect', () => events.push('disconnect'));
  agent.on('connect', () => events.push('connect'));
  await first.close();
  await waitFor(() => !agent.connected, { label: 'agent noticed' });
  const second = await startBroker(scope, first.port);
  const obs = await observe(scope, second.port);
  const reg = await waitFor(() => obs.on(t.registration('edge-001'))[0]?.body, { label: 'registration on the new broker', timeoutMs: 3000 });
  assert.equal(reg.boot_id, agent.bootId);
  assert.equal(events, ['disconnect', 'connect']);
}, { timeoutMs: 8000 }));

const stopping = suite('agent stop');

stopping('publishes offline/shutdown then disconnects cleanly: no will follows', bounded(async (scope) => {
  const { broker, port } = await startBroker(scope);
  const obs = await observe(scope, port);
  const { agent } = await agentOn(scope, port);
  await waitFor(() => obs.on(t.status('edge-001')).length === 1, { label: 'online' });
  const letGo = new Promise<void>((resolve) => broker.on('clientDisconnect', (client) => { if (client.id === 'edge-001') resolve(); }));
  const started = Date.now();
  await agent.stop();
  assert.ok(Date.now() - started < 1000, 'prompt');
  assert.not.ok(agent.connected);
  const bye = await waitFor(() => last(obs.on(t.status('edge-001'))), { label: 'shutdown status' });
  assert.equal({ state: bye.state, reason: bye.reason, boot_id: bye.boot_id }, { state: 'offline', reason: 'shutdown', boot_id: agent.bootId });
  assert.equal(validators.status(bye).ok, true);
  // The broker publishes a will, if any, as it lets the client go, and the will is retained: once
  // the client is gone, the retained status says whether one came.
  await withTimeout(letGo, 2000, 'the broker letting the agent go');
  assert.equal((await retainedOn(port, t.status('edge-001'))).map((m) => m.body?.reason), ['shutdown'], 'the retained status is the goodbye');
  assert.equal(obs.on(t.status('edge-001')).filter((m) => m.body?.reason === 'lost').length, 0, 'no will after a clean disconnect');
  await agent.stop(); // idempotent
}));

stopping('resolves at once when the broker is already gone', bounded(async (scope) => {
  const b = await startBroker(scope);
  const { agent } = await agentOn(scope, b.port);
  await connected(agent);
  await b.close();
  await waitFor(() => !agent.connected, { label: 'agent noticed' });
  const started = Date.now();
  await agent.stop();
  assert.ok(Date.now() - started < 500, `took ${Date.now() - started} ms`);
}));

stopping('is bounded by stopTimeoutMs when the broker never acknowledges; the will covers it', bounded(async (scope) => {
  // A broker that swallows the shutdown status: no PUBACK ever comes back.
  const { port } = await startBroker(scope, 0, {
    authorizePublish: (_client, packet, done) => { if (!String(packet.payload).includes('shutdown')) done(null); },
  });
  const obs = await observe(scope, port);
  const { agent, logs } = await agentOn(scope, port, { stopTimeoutMs: 300 });
  await waitFor(() => obs.on(t.status('edge-001')).length === 1, { label: 'online' });
  const started = Date.now();
  await agent.stop();
  const took = Date.now() - started;
  assert.ok(took >= 290 && took < 1500, `took ${took} ms`);
  assert.ok(logs.some((l) => /no clean goodbye/.test(String(l.msg))));
  const will = await waitFor(() => obs.on(t.status('edge-001')).find((m) => m.body?.reason === 'lost'), { label: 'will' });
  assert.equal(will.body!.boot_id, agent.bootId);
}));

stopping('stop() before the broker was ever reached cancels the retries', bounded(async (scope) => {
  const free = await startBroker(scope);
  await free.close(); // a port nobody listens on now
  const { agent, logs } = await agentOn(scope, free.port);
  await waitFor(() => logs.some((l) => l.msg === 'broker connection error'), { label: 'a connect attempt failed' });
  const started = Date.now();
  await agent.stop();
  assert.ok(Date.now() - started < 500);
  assert.not.ok(agent.connected);
}));

const config = suite('agent config');

const rejects = async (opts: Partial<AgentOptions>, pattern: RegExp) => {
  const base: AgentOptions = { nodeId: 'edge-001', capabilities: ['monitoring'], logger: silentLogger };
  try {
    await startAgent({ ...base, ...opts } as AgentOptions);
  } catch (err) {
    const message = (err as Error).message;
    assert.ok(message.startsWith('EDGEFED_ERR_AGENT_CONFIG: '), message);
    assert.match(message, pattern);
    assert.equal((err as { code?: string }).code, 'EDGEFED_ERR_AGENT_CONFIG');
    return;
  }
  assert.unreachable(`accepted ${JSON.stringify(opts)}`);
};

config('refuses invalid options with EDGEFED_ERR_AGENT_CONFIG naming the problem', async () => {
  await rejects({ nodeId: 'edge/001' }, /nodeId "edge\/001" is not a valid id/);
  await rejects({ nodeId: undefined }, /nodeId undefined/);
  await rejects({ capabilities: [] }, /1\.\.32/);
  await rejects({ capabilities: Array.from({ length: 33 }, (_, i) => `cap-${i}`) }, /got 33/);
  await rejects({ capabilities: ['ok', 'has space', '#'] }, /"has space", "#" are not valid ids/);
  await rejects({ capabilities: ['a', 'b', 'a'] }, /distinct; repeated: "a"/);
  await rejects({ capabilities: 'monitoring' as unknown as string[] }, /must be an array/);
  await rejects({ heartbeatIntervalMs: 10 }, /heartbeatIntervalMs must be an integer in 100\.\.86400000/);
  await rejects({ keepaliveS: 1.5 }, /keepaliveS/);
  await rejects({ reconnectMinMs: 5000, reconnectMaxMs: 1000 }, /reconnectMaxMs \(1000\) must be >= reconnectMinMs/);
  await rejects({ brokerUrl: 'http://hub:1883' }, /brokerUrl "http:\/\/hub:1883" must use one of/);
  await rejects({ brokerUrl: 'not a url' }, /is not a URL/);
  await rejects({ labels: { 'bad key': 'x' } }, /label name "bad key"/);
  await rejects({ topicRoot: 'edgefed/#' }, /topicRoot/);
  // Every problem at once, so an operator fixes them in one go.
  await rejects({ nodeId: '', capabilities: [], concurrency: 0 }, /nodeId.*; capabilities.*; concurrency/);
});

const units = suite('agent units');

units('backoffDelay: full jitter within [1, min(max, base * 2^attempt)]', () => {
  const policy = { minMs: 1000, maxMs: 30_000 };
  for (let attempt = 0; attempt < 40; attempt++) {
    const bound = Math.min(30_000, 1000 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, policy, () => 1), bound, 'random 1 reaches the bound');
    assert.equal(backoffDelay(attempt, policy, () => 0), 1, 'never 0: mqtt.js reads 0 as "do not reconnect"');
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(attempt, policy);
      assert.ok(Number.isInteger(d) && d >= 1 && d <= bound, `${d} outside [1, ${bound}]`);
    }
  }
  assert.equal(backoffDelay(1e9, policy, () => 1), 30_000, 'huge attempt numbers stay capped');
  assert.equal(backoffDelay(-3, policy, () => 1), 1000, 'negative attempts count as the first');
  assert.equal(backoffDelay(3, { minMs: 50, maxMs: 50 }, () => 0.5), 25);
});

units('attachBackoff: grows per failed attempt, resets on connect', async () => {
  const { EventEmitter } = await import('node:events');
  const fake = Object.assign(new EventEmitter(), { options: {} as IClientOptions }) as unknown as MqttClient;
  attachBackoff(fake, { minMs: 100, maxMs: 1000 }, () => 1);
  const periods: Array<number | undefined> = [];
  for (let i = 0; i < 6; i++) {
    fake.emit('reconnect');
    periods.push(fake.options.reconnectPeriod);
  }
  assert.equal(periods, [200, 400, 800, 1000, 1000, 1000]);
  fake.emit('connect', { cmd: 'connack', sessionPresent: false, returnCode: 0 });
  assert.equal(fake.options.reconnectPeriod, 100);
});

units('jitteredInterval stays within ±10%', () => {
  assert.equal(jitteredInterval(5000, () => 0), 4500);
  assert.equal(jitteredInterval(5000, () => 1), 5500);
  for (let i = 0; i < 100; i++) {
    const v = jitteredInterval(5000);
    assert.ok(v >= 4500 && v <= 5500);
  }
});

units('parseCommand and parseHubStatus check shapes with the generated validators', () => {
  const p = (s: string) => parseCommand(Buffer.from(s), 42);
  assert.equal(p('{"command":"rebirth","ts":7}'), { ok: true, value: { command: 'rebirth', ts: 7 } });
  assert.equal(p('{"command":"rebirth"}'), { ok: true, value: { command: 'rebirth', ts: 42 } });
  assert.equal(p('{"command":"cancel","wpk_id":"w1","attempt":2}'), { ok: true, value: { command: 'cancel', wpk_id: 'w1', attempt: 2, ts: 42 } });
  for (const bad of ['', 'null', '"rebirth"', '{"command":"cancel","wpk_id":"a/b","attempt":1}', '{"command":"cancel","wpk_id":"w","attempt":0}', '{"command":"rebirth","ts":-1}', '{}']) {
    assert.equal(p(bad).ok, false, bad);
  }
  assert.equal(parseHubStatus(Buffer.from('{"state":"online","boot_id":"b","ts":1}')), { ok: true, value: { state: 'online', boot_id: 'b', ts: 1 } });
  assert.equal(parseHubStatus(Buffer.from('{"state":"online"}')).ok, false);
});

lifecycle.run();
stopping.run();
config.run();
units.run();
