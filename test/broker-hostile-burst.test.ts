/**
 * 500 connections from one address in a burst, against the connection gate
 * wired in front of `broker.handle` as the listeners are to do it (see
 * helpers/hostile.ts). The good node connects from 127.0.0.2, so the
 * per-address limit on 127.0.0.1 is its own; it keeps its round trip going
 * and the registry does not change.
 */
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertUntouched, hostileStage, keepServing, rawSocket, tcpClientFrom, type HostileStage } from './helpers/hostile.js';
import { refusalLines, type LogLine } from './helpers/logs.js';
import { connectFrame } from './helpers/mqtt-bytes.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

const BURST = 500;
const CONNACK_OK = Buffer.from([0x20, 0x02, 0x00, 0x00]);

interface Attempt {
  socket: Socket;
  /** The broker answered our CONNECT: we were admitted and served. */
  connacked: boolean;
  closed: boolean;
}

interface Burst {
  attempts: Attempt[];
  /** From the first connect to the last verdict. */
  elapsedMs: number;
}

/** Opens `count` sockets from 127.0.0.1 at once, each sending a CONNECT; waits until each got a CONNACK or was closed. */
async function burst(scope: Scope, port: number, count: number): Promise<Burst> {
  const started = Date.now();
  const attempts = Array.from({ length: count }, (_, i): Attempt => {
    const socket = rawSocket(scope, port);
    const attempt: Attempt = { socket, connacked: false, closed: false };
    socket.once('connect', () => socket.write(connectFrame(`hostile-${i}`)));
    socket.on('data', (bytes: Buffer) => {
      if (bytes.subarray(0, 4).equals(CONNACK_OK)) attempt.connacked = true;
    });
    socket.once('close', () => {
      attempt.closed = true;
    });
    return attempt;
  });
  await waitFor(() => attempts.every((a) => a.connacked || a.closed), { timeoutMs: 8000, label: 'every attempt decided' });
  return { attempts, elapsedMs: Date.now() - started };
}

function served(b: Burst): number {
  return b.attempts.filter((a) => a.connacked).length;
}

/** Ends the admitted hostile connections and waits until the gate and aedes are back to `open` and `clients`. */
async function endBurst(stage: HostileStage, b: Burst, open: number, clients: number): Promise<void> {
  for (const { socket } of b.attempts) socket.destroy();
  await waitFor(() => stage.gate.stats().open === open && stage.broker.aedes.connectedClients === clients, {
    timeoutMs: 4000,
    label: 'hostile connections gone',
  });
}

const linesOf = (stage: HostileStage, reason: string) => refusalLines(stage.lines).filter((l) => l.reason === reason);
const logged = (lines: LogLine[]) => (lines.length === 0 ? 0 : 1 + lines.slice(1).reduce((sum, l) => sum + Number(l.suppressed), 0));

/**
 * Waits for the summary that completes the count: the last window's summary
 * comes an interval after the last refusal, which on a busy machine may be
 * after the burst's verdicts are all in.
 */
async function summarisedAll(stage: HostileStage, reason: string, refused: number, intervalMs: number): Promise<void> {
  await waitFor(() => linesOf(stage, reason).length >= 2 && logged(linesOf(stage, reason)) >= refused, {
    timeoutMs: intervalMs * 4, label: `summaries of ${refused} refusals`,
  });
}

/** Refusal log lines of `reason`: the first one, then summaries whose counts add up to every refusal. */
function assertLoggedOncePerInterval(stage: HostileStage, reason: string, refused: number, maxLines: number): void {
  const lines = linesOf(stage, reason);
  assert.ok(lines.length >= 2 && lines.length <= maxLines, `${lines.length} log lines for ${refused} refusals`);
  assert.ok(lines.every((l) => l.level === 40));
  assert.is(lines[0]!.remote, '127.0.0.1');
  const summarised = lines.slice(1).reduce((sum, l) => sum + Number(l.suppressed), 0);
  assert.is(1 + summarised, refused, 'every refusal is in a line or a summary count');
}

/** What must not change, taken once only the good node is connected; and the good node kept busy. */
async function before(stage: HostileStage) {
  const registryBefore = stage.registrySnapshot();
  const retainedBefore = await stage.retainedRegistration();
  await waitFor(() => stage.gate.stats().open === 1, { label: 'only the good node open' });
  return { registryBefore, retainedBefore, clientsBefore: stage.broker.aedes.connectedClients, service: keepServing(stage.good) };
}

test('500 connects from one address: the per-address limit admits the burst, refuses the rest at accept', bounded(async (scope) => {
  const logIntervalMs = 500;
  const stage = await hostileStage(scope, { gate: { exemptLoopback: false, connectRatePerAddress: 20, connectBurstPerAddress: 50, logIntervalMs } });
  const { registryBefore, retainedBefore, clientsBefore, service } = await before(stage);

  const b = await burst(scope, stage.port, BURST);
  const stats = stage.gate.stats();
  const refused = stats.refused.rate;
  assert.ok((await service.stop()) > 0, 'round trips went on meanwhile');
  assert.is(served(b) + refused, BURST, 'each attempt was served or refused');
  // The bucket of 50, plus what 20/s refilled while the burst lasted.
  const ceiling = 50 + Math.ceil((b.elapsedMs / 1000) * 20) + 1;
  assert.ok(served(b) >= 50 && served(b) <= ceiling, `${served(b)} served in ${b.elapsedMs} ms`);
  assert.is(stats.refused['max-connections'], 0);
  assert.is(stats.open, 1 + served(b));
  assert.is(stage.broker.aedes.connectedClients, clientsBefore + served(b), 'refused sockets never reached aedes');
  assert.is(stats.trackedAddresses, 2, 'a bucket each for 127.0.0.1 and the good node\'s 127.0.0.2');

  // One line at the first refusal; the rest only as counts, one summary per interval (a burst
  // longer than an interval on a busy machine has had a summary already).
  const early = refusalLines(stage.lines).length;
  assert.ok(early >= 1 && early <= 1 + Math.floor(b.elapsedMs / logIntervalMs), `${early} lines after a burst of ${b.elapsedMs} ms`);
  await summarisedAll(stage, 'rate', refused, logIntervalMs);
  assertLoggedOncePerInterval(stage, 'rate', refused, 2 + Math.ceil(b.elapsedMs / logIntervalMs));

  await endBurst(stage, b, 1, clientsBefore);
  await assertUntouched(stage, registryBefore, retainedBefore);
}, { timeoutMs: 20_000 }));

test('500 connects against a global limit of 100: 99 served beside the good node, 401 refused, slots come back', bounded(async (scope) => {
  const stage = await hostileStage(scope, { gate: { maxConnections: 100, logIntervalMs: 300 } });
  const { registryBefore, retainedBefore, clientsBefore, service } = await before(stage);

  const b = await burst(scope, stage.port, BURST);
  assert.ok((await service.stop()) > 0, 'round trips went on meanwhile');
  assert.is(served(b), 99);
  assert.equal(stage.gate.stats().refused, { rate: 0, 'max-connections': 401 }, 'loopback is exempt from the per-address limit only');
  assert.is(stage.broker.aedes.connectedClients, clientsBefore + 99);
  await summarisedAll(stage, 'max-connections', 401, 300);
  assertLoggedOncePerInterval(stage, 'max-connections', 401, 2 + Math.ceil(b.elapsedMs / 300));

  await endBurst(stage, b, 1, clientsBefore);
  const again = await tcpClientFrom(scope, stage.port, '127.0.0.1', { clientId: 'after-the-burst' });
  assert.ok(again.connected, 'closed connections free their slots');
  await again.endAsync(true);
  await assertUntouched(stage, registryBefore, retainedBefore);
}, { timeoutMs: 20_000 }));

test('500 connects from loopback with the defaults are all served (simulate and benchmarks)', bounded(async (scope) => {
  const stage = await hostileStage(scope);
  const { registryBefore, retainedBefore, clientsBefore, service } = await before(stage);

  const b = await burst(scope, stage.port, BURST);
  assert.ok((await service.stop()) > 0, 'round trips went on meanwhile');
  assert.is(served(b), BURST);
  assert.equal(stage.gate.stats().refused, { rate: 0, 'max-connections': 0 });
  assert.is(stage.gate.stats().trackedAddresses, 0);
  assert.is(refusalLines(stage.lines).length, 0);
  assert.is(stage.broker.aedes.connectedClients, clientsBefore + BURST);

  await endBurst(stage, b, 1, clientsBefore);
  await assertUntouched(stage, registryBefore, retainedBefore);
}, { timeoutMs: 20_000 }));

test.run();
