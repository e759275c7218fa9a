/**
 * The contract of the hub's transport (hub/transport.ts), run against both
 * implementations on an embedded broker: HubLink (an mqtt.js client over the
 * in-memory stream) and InProcessLink (aedes's bus and store directly).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { EdgefedBroker } from '../broker/index.js';
import { inProcessTransport } from '../server/in-process-link.js';
import { mqttTransport } from '../hub/link.js';
import type { HubTransport, LinkSetup, OpenHubTransport } from '../hub/transport.js';
import { silentLogger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import { memoryClient, nextMessage, startBroker } from './helpers/broker.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

const t = topics();

interface Seen { topic: string; payload: string; retained: boolean }

interface Harness {
  link: HubTransport;
  seen: Seen[];
  sessions: { connecting: number; subscribed: boolean[] };
}

type Kind = { name: string; open: (broker: EdgefedBroker) => OpenHubTransport };

const kinds: Kind[] = [
  { name: 'mqtt.js client (HubLink)', open: (broker) => mqttTransport((o) => broker.connectInMemory(o)) },
  { name: 'in-process (InProcessLink)', open: (broker) => inProcessTransport(broker) },
];

function harness(scope: Scope, open: OpenHubTransport, onMessage?: (m: Seen) => void): Harness {
  const seen: Seen[] = [];
  const sessions = { connecting: 0, subscribed: [] as boolean[] };
  const setup: LinkSetup = {
    topics: t, bootId: 'boot-hub', clientId: 'hub-contract', persistent: false, keepaliveS: 30, version: 'test', log: silentLogger,
    onMessage: (topic, payload, retained) => {
      const m = { topic, payload: payload.toString(), retained };
      seen.push(m);
      onMessage?.(m);
    },
    onConnecting: () => { sessions.connecting += 1; },
    onSubscribed: (first) => { sessions.subscribed.push(first); },
  };
  const link = open(setup);
  scope.defer(() => link.stop());
  return { link, seen, sessions };
}

for (const kind of kinds) {
  const test = suite(`hub transport contract: ${kind.name}`);

  test('replays the retained store flagged retained, then delivers live messages unflagged and in order', bounded(async (scope) => {
    const broker = await startBroker(scope, { listen: false });
    const node = await memoryClient(scope, broker, { clientId: 'edge-1' });
    await node.publishAsync(t.registration('edge-1'), '{"old":true}', { qos: 1, retain: true });
    // aedes 1.2 acknowledges a QoS 1 PUBLISH before routing it: a subscriber replayed the copy has it stored.
    const watcher = await memoryClient(scope, broker, { clientId: 'watcher' });
    const stored = nextMessage(watcher, t.registration('edge-1'));
    await watcher.subscribeAsync(t.registration('edge-1'), { qos: 1 });
    assert.ok((await stored).retain);
    const h = harness(scope, kind.open(broker));
    await h.link.start();
    assert.ok(h.link.connected);
    assert.is(h.sessions.connecting, 1);
    assert.equal(h.sessions.subscribed, [true]);
    await waitFor(() => h.seen.find((m) => m.topic === t.registration('edge-1')), { label: 'replay' });
    assert.equal(h.seen.filter((m) => m.topic === t.registration('edge-1')), [{ topic: t.registration('edge-1'), payload: '{"old":true}', retained: true }]);

    for (let i = 0; i < 50; i += 1) void node.publishAsync(t.status('edge-1'), String(i), { qos: 1, retain: true });
    await waitFor(() => h.seen.filter((m) => m.topic === t.status('edge-1')).length === 50, { label: '50 live messages' });
    const live = h.seen.filter((m) => m.topic === t.status('edge-1'));
    assert.equal(live.map((m) => m.payload), Array.from({ length: 50 }, (_, i) => String(i)), 'QoS 1 order kept');
    assert.ok(live.every((m) => !m.retained), 'live, though published retained');
  }));

  test('announces the hub online (retained) after subscribing, and offline/shutdown on stop', bounded(async (scope) => {
    const broker = await startBroker(scope, { listen: false });
    const h = harness(scope, kind.open(broker));
    await h.link.start();
    const watcher = await memoryClient(scope, broker, { clientId: 'watcher' });
    const online = nextMessage(watcher, t.hubStatus());
    await watcher.subscribeAsync(t.hubStatus(), { qos: 1 });
    const announced = await online;
    assert.ok(announced.retain);
    assert.is(JSON.parse(announced.payload).state, 'online');
    assert.is(JSON.parse(announced.payload).boot_id, 'boot-hub');
    assert.not.ok(h.seen.some((m) => m.topic === t.hubStatus() && m.retained), 'its own announcement is not in the replay');

    const offline = nextMessage(watcher, t.hubStatus());
    await h.link.stop();
    const goodbye = JSON.parse((await offline).payload);
    assert.equal([goodbye.state, goodbye.reason], ['offline', 'shutdown']);
    assert.not.ok(h.link.connected);
  }));

  test('publishes with the QoS and retain asked; its own echo comes after the caller returned', bounded(async (scope) => {
    const broker = await startBroker(scope, { listen: false });
    let inCaller = false;
    let echoInCaller: boolean | undefined;
    const h = harness(scope, kind.open(broker), (m) => { if (m.topic === t.trigger('gpu')) echoInCaller = inCaller; });
    await h.link.start();
    inCaller = true;
    h.link.publish(t.trigger('gpu'), '{"n":1}', { qos: 0, retain: false });
    h.link.publish(t.registration('edge-2'), '{"copy":true}', { qos: 1, retain: true });
    inCaller = false;
    await waitFor(() => echoInCaller !== undefined, { label: 'trigger echo' });
    assert.is(echoInCaller, false);

    const late = await memoryClient(scope, broker, { clientId: 'late' });
    const kept = nextMessage(late, t.registration('edge-2'));
    await late.subscribeAsync(t.registration('edge-2'), { qos: 1 });
    const m = await kept;
    assert.equal([m.payload, m.retain], ['{"copy":true}', true]);
  }));

  test.run();
}
