/**
 * The connection gate on its own, with fake sockets and a fake clock: the
 * token bucket per address, the loopback exemption, the global limit, the
 * bounded address table and the throttled refusal log.
 */
import { EventEmitter } from 'node:events';
import { mock } from 'node:test';
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createConnectionGate, defaultConnectionLimits, type ConnectionGateOptions, type GatedSocket } from '../broker/conn-limits.js';
import { capturingLogger, refusalLines, type LogLine } from './helpers/logs.js';

class FakeSocket extends EventEmitter implements GatedSocket {
  destroyed = false;

  constructor(readonly remoteAddress: string | undefined) {
    super();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

interface Rig {
  gate: ReturnType<typeof createConnectionGate>;
  lines: LogLine[];
  clock: { ms: number };
  /** Admits a fresh socket from `address`; returns it with the verdict. */
  knock(address: string | undefined): { socket: FakeSocket; admitted: boolean };
}

function rig(options: ConnectionGateOptions = {}): Rig {
  const lines: LogLine[] = [];
  const clock = { ms: 1_000 };
  const gate = createConnectionGate({ now: () => clock.ms, ...options }, capturingLogger(lines));
  return {
    gate,
    lines,
    clock,
    knock(address) {
      const socket = new FakeSocket(address);
      return { socket, admitted: gate.admit(socket) };
    },
  };
}

function knockMany(r: Rig, address: string, count: number): number {
  let admitted = 0;
  for (let i = 0; i < count; i++) if (r.knock(address).admitted) admitted += 1;
  return admitted;
}

test('a net.Socket is a GatedSocket (the listeners hand theirs in as they are)', () => {
  const fits = (socket: Socket): GatedSocket => socket;
  assert.type(fits, 'function');
});

test('defaults: 20 connects/s, burst 50, 10,000 connections, loopback exempt', () => {
  assert.equal(defaultConnectionLimits, {
    connectRatePerAddress: 20,
    connectBurstPerAddress: 50,
    maxConnections: 10_000,
    exemptLoopback: true,
    maxTrackedAddresses: 10_000,
    logIntervalMs: 10_000,
  });
});

test('an address gets its burst, then its rate', () => {
  const r = rig({ connectRatePerAddress: 10, connectBurstPerAddress: 5 });
  assert.is(knockMany(r, '192.0.2.1', 8), 5);
  r.clock.ms += 250; // 2.5 tokens earned
  assert.is(knockMany(r, '192.0.2.1', 5), 2);
  r.clock.ms += 60_000; // refills to the burst, never past it
  assert.is(knockMany(r, '192.0.2.1', 10), 5);
  r.gate.close();
});

test('a refused socket is destroyed at once and counted; an admitted one is left alone', () => {
  const r = rig({ connectRatePerAddress: 1, connectBurstPerAddress: 1 });
  const first = r.knock('192.0.2.1');
  const second = r.knock('192.0.2.1');
  assert.ok(first.admitted && !first.socket.destroyed);
  assert.ok(!second.admitted && second.socket.destroyed);
  assert.equal(r.gate.stats(), {
    open: 1,
    admitted: 1,
    refused: { rate: 1, 'max-connections': 0 },
    trackedAddresses: 1,
    evictedAddresses: 0,
  });
  r.gate.close();
});

test('addresses have separate buckets', () => {
  const r = rig({ connectRatePerAddress: 1, connectBurstPerAddress: 2 });
  assert.is(knockMany(r, '192.0.2.1', 5), 2);
  assert.is(knockMany(r, '192.0.2.2', 5), 2);
  assert.is(knockMany(r, '2001:db8::1', 5), 2);
  r.gate.close();
});

test('an IPv4-mapped IPv6 peer shares the bucket of its IPv4 address', () => {
  const r = rig({ connectRatePerAddress: 1, connectBurstPerAddress: 2 });
  assert.ok(r.knock('::ffff:192.0.2.7').admitted);
  assert.ok(r.knock('192.0.2.7').admitted);
  assert.not.ok(r.knock('::FFFF:192.0.2.7').admitted);
  assert.is(r.gate.stats().trackedAddresses, 1);
  r.gate.close();
});

test('loopback skips the per-address limit by default, and not with exemptLoopback: false', () => {
  const loopbacks = ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'];
  const exempt = rig({ connectRatePerAddress: 1, connectBurstPerAddress: 1 });
  for (const address of loopbacks) assert.is(knockMany(exempt, address, 100), 100, address);
  assert.is(exempt.gate.stats().trackedAddresses, 0, 'exempt peers take no table entry');
  assert.is(knockMany(exempt, '10.0.0.1', 3), 1, 'private addresses are not exempt');

  const limited = rig({ connectRatePerAddress: 1, connectBurstPerAddress: 1, exemptLoopback: false });
  for (const address of loopbacks.slice(0, 3)) assert.is(knockMany(limited, address, 100), 1, address);
  exempt.gate.close();
  limited.gate.close();
});

test('the global limit counts open connections, loopback included, and a close frees a slot', () => {
  const r = rig({ maxConnections: 3 });
  const held = ['127.0.0.1', '192.0.2.1', '192.0.2.2'].map((address) => r.knock(address));
  assert.ok(held.every((k) => k.admitted));
  assert.not.ok(r.knock('127.0.0.1').admitted);
  assert.not.ok(r.knock('192.0.2.3').admitted);
  held[0]!.socket.destroy();
  assert.is(r.gate.stats().open, 2);
  assert.ok(r.knock('192.0.2.3').admitted);
  assert.equal(r.gate.stats().refused, { rate: 0, 'max-connections': 2 });
  r.gate.close();
});

test('a refusal by the global limit takes no token from the address', () => {
  const r = rig({ maxConnections: 1, connectRatePerAddress: 1, connectBurstPerAddress: 2 });
  const holder = r.knock('192.0.2.1');
  assert.is(knockMany(r, '192.0.2.1', 10), 0);
  holder.socket.destroy();
  assert.ok(r.knock('192.0.2.1').admitted, 'one token left of the burst of 2');
  r.gate.close();
});

test('0 turns either limit off', () => {
  const r = rig({ connectRatePerAddress: 0, maxConnections: 0 });
  assert.is(knockMany(r, '192.0.2.1', 20_000), 20_000);
  assert.is(r.gate.stats().trackedAddresses, 0);
  r.gate.close();
});

test('the address table stays bounded under a rotating-address flood', () => {
  const r = rig({ connectRatePerAddress: 1, connectBurstPerAddress: 5, maxTrackedAddresses: 1000, maxConnections: 0 });
  for (let i = 0; i < 100_000; i++) {
    assert.ok(r.knock(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`).admitted);
    if (i % 10_000 === 0) assert.ok(r.gate.stats().trackedAddresses <= 1000);
  }
  assert.is(r.gate.stats().trackedAddresses, 1000);
  assert.is(r.gate.stats().evictedAddresses, 99_000);
  r.gate.close();
});

test('idle buckets are forgotten once they would be full again', () => {
  const r = rig({ connectRatePerAddress: 10, connectBurstPerAddress: 5 });
  for (let i = 0; i < 50; i++) r.knock(`192.0.2.${i}`);
  assert.is(r.gate.stats().trackedAddresses, 50);
  r.clock.ms += 499; // 4.99 tokens earned: not full yet
  r.knock('198.51.100.1');
  assert.is(r.gate.stats().trackedAddresses, 51);
  r.clock.ms += 1;
  r.knock('198.51.100.2');
  assert.is(r.gate.stats().trackedAddresses, 2, 'the first 50 were full again and dropped');
  assert.is(r.gate.stats().evictedAddresses, 0, 'forgetting an idle bucket is no eviction');
  r.gate.close();
});

test('a socket without a remote address (peer already gone) is destroyed, not counted', () => {
  const r = rig();
  const { socket, admitted } = r.knock(undefined);
  assert.not.ok(admitted);
  assert.ok(socket.destroyed);
  assert.equal(r.gate.stats().refused, { rate: 0, 'max-connections': 0 });
  assert.is(r.gate.stats().open, 0);
  r.gate.close();
});

test('1,000 refusals make one warn line, then one summary per interval', () => {
  // The log windows run on setTimeout: node:test's mock timers move them on, so each interval
  // ends exactly when the test says, with nothing to wait for.
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const r = rig({ connectRatePerAddress: 1, connectBurstPerAddress: 1, logIntervalMs: 200 });
    knockMany(r, '192.0.2.1', 1001);
    let lines = refusalLines(r.lines);
    assert.is(lines.length, 1);
    assert.is(lines[0]!.level, 40);
    assert.is(lines[0]!.reason, 'rate');
    assert.is(lines[0]!.remote, '192.0.2.1');
    assert.is(lines[0]!.connectRatePerAddress, 1);
    mock.timers.tick(199);
    assert.is(refusalLines(r.lines).length, 1, 'no summary before the interval ends');
    mock.timers.tick(1);
    assert.is(refusalLines(r.lines).length, 2, 'the summary');
    lines = refusalLines(r.lines);
    assert.is(lines[1]!.suppressed, 999);
    assert.is(lines[1]!.intervalMs, 200);
    assert.is(lines[1]!.lastRemote, '192.0.2.1');

    // The flood goes on into the next interval: still no line per socket, one summary.
    knockMany(r, '192.0.2.2', 300);
    assert.is(refusalLines(r.lines).length, 2);
    mock.timers.tick(200);
    assert.is(refusalLines(r.lines).length, 3, 'second summary');
    assert.is(refusalLines(r.lines)[2]!.suppressed, 299, 'one of the 300 was admitted');

    // A quiet interval closes the window; the next refusal is news again.
    mock.timers.tick(200);
    assert.is(refusalLines(r.lines).length, 3);
    knockMany(r, '192.0.2.2', 1);
    assert.is(refusalLines(r.lines).length, 4);
    assert.not.ok('suppressed' in refusalLines(r.lines)[3]!);
    assert.is(r.gate.stats().refused.rate, 1000 + 299 + 1);
    r.gate.close();
  } finally {
    mock.timers.reset();
  }
});

test('each reason has its own log window', () => {
  const r = rig({ connectRatePerAddress: 1, connectBurstPerAddress: 1, maxConnections: 2 });
  r.knock('192.0.2.1');
  knockMany(r, '192.0.2.1', 10);
  r.knock('192.0.2.2');
  knockMany(r, '192.0.2.3', 10);
  assert.equal(refusalLines(r.lines).map((l) => l.reason), ['rate', 'max-connections']);
  r.gate.close();
});

test('close() logs what is pending, and refuses later sockets', () => {
  const r = rig({ connectRatePerAddress: 1, connectBurstPerAddress: 1, logIntervalMs: 600_000 });
  knockMany(r, '192.0.2.1', 5);
  r.gate.close();
  r.gate.close();
  const lines = refusalLines(r.lines);
  assert.is(lines.length, 2);
  assert.is(lines[1]!.suppressed, 3);
  const late = r.knock('192.0.2.9');
  assert.not.ok(late.admitted);
  assert.ok(late.socket.destroyed);
  assert.is(r.gate.stats().trackedAddresses, 0);
});

test('invalid limits are refused with EDGEFED_ERR_BROKER_OPTION', () => {
  const bad: ConnectionGateOptions[] = [
    { connectRatePerAddress: -1 },
    { connectRatePerAddress: Number.POSITIVE_INFINITY },
    { connectBurstPerAddress: 0 },
    { connectBurstPerAddress: 2.5 },
    { maxConnections: -1 },
    { maxTrackedAddresses: 0 },
    { logIntervalMs: 0 },
    { exemptLoopback: 'no' as unknown as boolean },
  ];
  for (const options of bad) {
    assert.throws(() => createConnectionGate(options, capturingLogger([])), /^EDGEFED_ERR_BROKER_OPTION: /, JSON.stringify(options));
  }
  // A fractional rate is fine: one connect every 2 s.
  createConnectionGate({ connectRatePerAddress: 0.5 }, capturingLogger([])).close();
});

test.run();
