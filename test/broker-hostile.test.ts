/**
 * Hostile bytes on the broker's TCP side: an oversized PUBLISH, garbage
 * instead of MQTT, a CONNECT that never finishes. Each runs while a
 * registered good node keeps a round trip going, and must leave the registry
 * and the retained registration exactly as they were. These need only what
 * the broker already has (the packet guard, aedes's connect timeout).
 */
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { streamZeros } from './helpers/broker.js';
import { nextEvent } from './helpers/events.js';
import { assertUntouched, closedWithin, GOOD_NODE, hostileStage, keepServing, peerLabel, rawSocket, type HostileStage } from './helpers/hostile.js';
import { linesWith, type LogLine } from './helpers/logs.js';
import { connectFrame, frame, publishFrame, publishHead } from './helpers/mqtt-bytes.js';
import { bounded } from './helpers/scope.js';
import { sleep, waitFor } from './helpers/time.js';

const MB = 1024 * 1024;
const CONNECT_TIMEOUT_MS = 400;

/** Memory after a collection when the run allows one (`node --expose-gc`); plain numbers otherwise. */
async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  await sleep(50);
  gc?.();
  return process.memoryUsage();
}

/** Log lines about the connection from `socket` (the broker logs the peer as address:port). */
function linesAbout(stage: HostileStage, socket: Socket): LogLine[] {
  const remote = peerLabel(socket);
  assert.ok(remote !== undefined, 'the socket connected');
  return stage.lines.filter((l) => l.remote === remote);
}

/** Clients aedes holds: the hub's own and the good node, when no hostile one got in. */
/** The broker's sessions: the hub's in-process one and the MQTT clients aedes counts. */
function aedesClients(stage: HostileStage): number {
  return stage.broker.stats.clients;
}

test('a 5 MB PUBLISH is cut at the packet guard, and memory does not grow by it', bounded(async (scope) => {
  const stage = await hostileStage(scope);
  const registryBefore = stage.registrySnapshot();
  const retainedBefore = await stage.retainedRegistration();
  const service = keepServing(stage.good);
  const before = await settledMemory();

  const socket = rawSocket(scope, stage.port);
  await nextEvent(socket, 'connect');
  socket.write(connectFrame('hostile-big'));
  // Aimed where it would hurt most: the good node's retained registration.
  socket.write(publishHead(stage.fed.hub.topics.registration(GOOD_NODE), 5 * MB, true));
  await streamZeros(socket, 5 * MB);
  await closedWithin(socket, 3000, 'oversized publisher cut');
  const after = await settledMemory();

  assert.ok((await service.stop()) > 0, 'round trips went on meanwhile');
  assert.is(stage.broker.stats.packetGuardDrops, 1, 'counted once');
  const cuts = linesAbout(stage, socket).filter((l) => String(l.msg).startsWith('packet guard cut a connection'));
  assert.is(cuts.length, 1, 'logged once');
  assert.is(cuts[0]!.level, 40);
  assert.is(cuts[0]!.reason, 'too-large');
  assert.is(cuts[0]!.packetType, 3);
  assert.ok(Number(cuts[0]!.declaredBytes) > 5 * MB);
  // Loose on purpose: RSS moves with everything else in the process. Buffered, the payload alone would be 5 MB.
  const rssGrowth = after.rss - before.rss;
  assert.ok(rssGrowth < 2.5 * MB, `RSS grew by ${(rssGrowth / MB).toFixed(2)} MB`);
  assert.ok(after.arrayBuffers - before.arrayBuffers < MB, `buffers grew by ${((after.arrayBuffers - before.arrayBuffers) / MB).toFixed(2)} MB`);
  assert.is(aedesClients(stage), 2, 'the hostile client is gone from aedes');
  await assertUntouched(stage, registryBefore, retainedBefore);
}, { timeoutMs: 15_000 }));

/** Deterministic noise (an LCG), so a failure can be replayed byte for byte. */
function noise(length: number, seed = 12345): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

const garbage: Array<{ name: string; bytes: Buffer }> = [
  { name: 'an HTTP request', bytes: Buffer.from('GET /federation/nodes HTTP/1.1\r\nHost: hub\r\n\r\n') },
  // A TLS client on the plain port: 0x16 reads as CONNECT with reserved flags set.
  { name: 'a TLS ClientHello', bytes: Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]), noise(64, 7)]) },
  { name: 'a remaining length of more than 4 bytes', bytes: Buffer.alloc(16, 0xff) },
  { name: '4 KB of noise', bytes: noise(4096) },
  { name: 'a PUBLISH before any CONNECT', bytes: publishFrame(`edgefed/v1/nodes/${GOOD_NODE}/registration`, Buffer.from('{}'), true) },
  { name: 'a CONNECT then a packet of reserved type 0', bytes: Buffer.concat([connectFrame('hostile-junk'), frame(0x00)]) },
  { name: 'a second CONNECT [MQTT-3.1.0-2]', bytes: Buffer.concat([connectFrame('hostile-twice'), connectFrame('hostile-twice')]) },
  { name: 'a CONNECT with protocol name "HTTP"', bytes: Buffer.from(connectFrame('hostile-proto').toString('latin1').replace('MQTT', 'HTTP'), 'latin1') },
];

test('garbage instead of MQTT is dropped, logged and leaves no client behind', bounded(async (scope) => {
  const stage = await hostileStage(scope, { broker: { connectTimeoutMs: CONNECT_TIMEOUT_MS } });
  const registryBefore = stage.registrySnapshot();
  const retainedBefore = await stage.retainedRegistration();
  const service = keepServing(stage.good);

  const started = Date.now();
  const victims = garbage.map(({ name, bytes }) => {
    const socket = rawSocket(scope, stage.port);
    socket.once('connect', () => socket.write(bytes));
    return { name, socket, closedAt: closedWithin(socket, CONNECT_TIMEOUT_MS + 2000, name).then(() => Date.now() - started) };
  });
  const closedAfter = await Promise.all(victims.map((v) => v.closedAt));

  assert.ok((await service.stop()) > 0, 'round trips went on meanwhile');
  assert.is(stage.broker.stats.packetGuardDrops, 1, 'the guard took the malformed length, aedes the rest');
  victims.forEach(({ name }, i) => {
    // Each is cut at its first bad header, not left to the connect timeout.
    assert.ok(closedAfter[i]! < CONNECT_TIMEOUT_MS, `${name}: dropped at once (${closedAfter[i]} ms)`);
  });
  for (const { name, socket } of victims) {
    const about = linesAbout(stage, socket);
    assert.ok(about.length >= 1, `${name}: logged`);
    assert.ok(about.length <= 3, `${name}: a few lines, not one per byte (${about.length})`);
    assert.ok(about.every((l) => l.level <= 40), `${name}: nothing above warn`);
  }
  await waitFor(() => aedesClients(stage) === 2, { label: 'hostile clients gone from aedes' });
  await assertUntouched(stage, registryBefore, retainedBefore);
}, { timeoutMs: 10_000 }));

/** Writes `bytes` one byte every `everyMs` until done or the socket closes: a slowloris CONNECT. */
async function trickle(socket: Socket, bytes: Buffer, everyMs: number): Promise<void> {
  for (let i = 0; i < bytes.length && !socket.destroyed; i++) {
    socket.write(bytes.subarray(i, i + 1));
    await sleep(everyMs);
  }
}

test('a CONNECT that never finishes is dropped after the connect timeout', bounded(async (scope) => {
  const stage = await hostileStage(scope, { broker: { connectTimeoutMs: CONNECT_TIMEOUT_MS } });
  const registryBefore = stage.registrySnapshot();
  const retainedBefore = await stage.retainedRegistration();
  const service = keepServing(stage.good);
  const connect = connectFrame(`hostile-slow-${'x'.repeat(40)}`);

  const silent = rawSocket(scope, stage.port);
  const half = rawSocket(scope, stage.port);
  const slow = rawSocket(scope, stage.port);
  await Promise.all([silent, half, slow].map((s) => nextEvent(s, 'connect')));
  const started = Date.now();
  half.write(connect.subarray(0, connect.length >> 1));
  // 20 ms a byte: the whole CONNECT would take over a second, past the timeout.
  void trickle(slow, connect, 20);
  const closedAfter = await Promise.all(
    [silent, half, slow].map((s, i) => closedWithin(s, CONNECT_TIMEOUT_MS + 2000, `socket ${i}`).then(() => Date.now() - started)),
  );

  assert.ok((await service.stop()) > 0, 'round trips went on meanwhile');
  for (const ms of closedAfter) {
    assert.ok(ms >= CONNECT_TIMEOUT_MS - 50, `not dropped before the timeout (${ms} ms)`);
    assert.ok(ms < CONNECT_TIMEOUT_MS + 1000, `dropped soon after the timeout (${ms} ms)`);
  }
  for (const socket of [silent, half, slow]) {
    const timeouts = linesAbout(stage, socket).filter((l) => l.err === 'connect did not arrive in time');
    assert.is(timeouts.length, 1, 'one debug line per dropped connection');
    assert.is(timeouts[0]!.level, 20);
  }
  assert.is(linesWith(stage.lines, 'client connected').filter((l) => String(l.clientId).startsWith('hostile')).length, 0);
  assert.is(aedesClients(stage), 2);
  await assertUntouched(stage, registryBefore, retainedBefore);
}, { timeoutMs: 10_000 }));

test.run();
