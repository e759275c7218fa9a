/**
 * The hub's MQTT session: a clean one per boot on the embedded broker, a
 * persistent one under a stable client id on an external broker, so what
 * nodes publish while the hub is away waits in the broker's queue.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent } from '../agent/index.js';
import { createBroker, type EdgefedBroker } from '../broker/index.js';
import { createHub, hubClientId, type Hub, type HubOptions } from '../hub/index.js';
import { memoryAdapter } from '../hub/store/registry-file.js';
import { silentLogger } from '../lib/log.js';
import { federation } from './helpers/federation.js';
import { capturingLogger, linesWith, type LogLine } from './helpers/logs.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

const test = suite('hub: MQTT session');

async function tempDir(scope: Scope): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-session-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function embeddedBroker(scope: Scope): Promise<EdgefedBroker> {
  const broker = await createBroker({ listen: false });
  scope.defer(() => broker.close());
  return broker;
}

async function startedHub(scope: Scope, broker: EdgefedBroker, options: Partial<HubOptions>): Promise<Hub> {
  const hub = createHub({
    connect: (o) => broker.connectInMemory(o), logger: silentLogger, resync: { settleMs: 100, maxWaitMs: 1000 }, ...options,
  });
  scope.defer(() => hub.stop());
  await hub.start();
  return hub;
}

const connectedLine = (lines: LogLine[]) => linesWith(lines, 'hub connected to the broker')[0];

test('the persistent client id: edgefed-hub for the default root, one per other root, the same every time', () => {
  assert.is(hubClientId('edgefed/v1'), 'edgefed-hub');
  const acme = hubClientId('acme/site-3/edgefed/v1');
  assert.match(acme, /^edgefed-hub-[0-9a-f]{8}$/);
  assert.is(hubClientId('acme/site-3/edgefed/v1'), acme);
  assert.is.not(hubClientId('acme/site-4/edgefed/v1'), acme);
});

test('a clientId brokers may refuse is an EDGEFED_ERR_HUB_CONFIG at construction', () => {
  for (const bad of ['', 'two words', 'a/b', 'x'.repeat(129), '-lead', 'hub#1']) {
    assert.throws(
      () => createHub({ connect: () => { throw new Error('not reached'); }, adapter: memoryAdapter(), clientId: bad }),
      /EDGEFED_ERR_HUB_CONFIG: clientId/, JSON.stringify(bad),
    );
  }
  createHub({ connect: () => { throw new Error('not reached'); }, adapter: memoryAdapter(), clientId: 'site-3.hub:a@b_c' });
});

test('startFederation: a clean session per boot on the embedded broker, a persistent one on an external broker', bounded(async (scope) => {
  const embeddedLines: LogLine[] = [];
  const embedded = await federation({ logger: capturingLogger(embeddedLines) });
  scope.defer(() => embedded.stop());
  assert.match(String(connectedLine(embeddedLines)?.client_id), /^edgefed-hub-.{8}$/);
  assert.is(connectedLine(embeddedLines)?.persistent, false);

  const external = await createBroker({ host: '127.0.0.1', port: 0 });
  scope.defer(() => external.close());
  for (const [hub, want] of [[{}, 'edgefed-hub'], [{ clientId: 'site-3-hub' }, 'site-3-hub']] as const) {
    const lines: LogLine[] = [];
    const fed = await federation({ brokerUrl: external.url!, logger: capturingLogger(lines), hub });
    const line = connectedLine(lines);
    await fed.stop();
    assert.is(line?.client_id, want);
    assert.is(line?.persistent, true);
  }
}, { timeoutMs: 10_000 }));

test('an update a node publishes while the hub is away waits in the broker for the restarted hub: the WPK succeeds, attempt 1, run once', bounded(async (scope) => {
  const broker = await embeddedBroker(scope);
  const dir = await tempDir(scope);
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => { release = resolve; });
  const agent = await startAgent({
    nodeId: 'slow-1', capabilities: ['slow'], connect: (o) => broker.connectInMemory(o), heartbeatIntervalMs: 200, logger: silentLogger,
    actions: { gated: async () => { runs += 1; await gate; return { run: runs }; } },
  });
  scope.defer(() => agent.stop());
  const session: Partial<HubOptions> = { dataDir: dir, persistentSession: true, wpk: { sweepIntervalMs: 50, timeoutGraceMs: 100 } };

  const first = await startedHub(scope, broker, session);
  await waitFor(() => first.node('slow-1')?.status === 'active', { label: 'node active' });
  const { wpk_id: id } = await first.wpks.create({ capability: 'slow', action: 'gated', timeout_ms: 1500, max_attempts: 3 });
  await waitFor(() => first.wpks.get(id)?.state === 'running', { label: 'running' });
  await first.stop();

  // The node ends the work with no hub connected: once a watcher has the result, the broker has queued it for the hub's session.
  const watcher = broker.connectInMemory({ clientId: 'watcher', reconnectPeriod: 0 });
  scope.defer(() => watcher.endAsync(true));
  const results: string[] = [];
  watcher.on('message', (_t, payload) => void results.push(JSON.parse(payload.toString()).state));
  await watcher.subscribeAsync(first.topics.execution('slow-1', id), { qos: 1 });
  release();
  await waitFor(() => results.includes('succeeded'), { label: 'the node published its result' });

  const lines: LogLine[] = [];
  const second = await startedHub(scope, broker, { ...session, logger: capturingLogger(lines) });
  const done = await waitFor(() => {
    const w = second.wpks.get(id);
    return w && (w.state !== 'running' || w.attempt > 1) ? w : undefined;
  }, { timeoutMs: 4000, label: 'the WPK moves' });
  assert.is(done.state, 'succeeded');
  assert.equal(done.result, { run: 1 });
  assert.is(done.attempt, 1);
  assert.is(done.executions.length, 1);
  assert.is(runs, 1);
  assert.is(connectedLine(lines)?.session_present, true);
}, { timeoutMs: 10_000 }));

test('two hubs with one client id on one broker: the takeover loop is logged as an error', bounded(async (scope) => {
  const broker = await embeddedBroker(scope);
  const lines: LogLine[] = [];
  // Reconnecting every 20 ms rather than the hub's 1 s: three short sessions in a row come at once.
  const both: Partial<HubOptions> = {
    persistentSession: true, clientId: 'same-hub', logger: capturingLogger(lines), connect: (o) => broker.connectInMemory({ ...o, reconnectPeriod: 20 }),
  };
  await startedHub(scope, broker, { ...both, adapter: memoryAdapter() });
  const second = createHub({ ...both, connect: both.connect!, adapter: memoryAdapter() });
  scope.defer(() => second.stop());
  void second.start().catch(() => undefined); // may be kicked before it is subscribed
  const error = await waitFor(() => lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('EDGEFED_ERR_HUB_SESSION_TAKEOVER')), {
    timeoutMs: 5000, label: 'takeover error logged',
  });
  assert.is(error.client_id, 'same-hub');
  assert.match(String(error.msg), /--hub-client-id/);
}, { timeoutMs: 8000 }));

test.run();
