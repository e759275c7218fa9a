import type { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FrameScanner } from '../broker/frame-scanner.js';
import { duplexPair } from '../broker/memory.js';
import { guardStream, PacketGuardError, type PacketGuardViolation } from '../broker/packet-guard.js';
import { nextEvent } from './helpers/events.js';
import { connectFrame, frame, publishFrame, publishHead } from './helpers/mqtt-bytes.js';
import { bounded } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

const PINGREQ = frame(0xc0);

function scanBytewise(scanner: FrameScanner, bytes: Buffer) {
  for (let i = 0; i < bytes.length; i++) {
    const violation = scanner.scan(bytes.subarray(i, i + 1));
    if (violation) return violation;
  }
  return undefined;
}

// ---- FrameScanner -----------------------------------------------------------

test('scanner follows packets split at every byte and packed in one chunk', () => {
  const stream = Buffer.concat([connectFrame('c1'), publishFrame('a/b', Buffer.alloc(300)), PINGREQ, publishFrame('c', Buffer.alloc(20_000))]);
  assert.is(scanBytewise(new FrameScanner(32 * 1024), stream), undefined);
  assert.is(new FrameScanner(32 * 1024).scan(stream), undefined);
  // The same stream twice proves the state returned to "next header" after each body.
  const scanner = new FrameScanner(32 * 1024);
  assert.is(scanner.scan(Buffer.concat([stream, stream])), undefined);
});

test('scanner accepts a packet of exactly the limit and refuses one byte more', () => {
  const atLimit = publishFrame('t', Buffer.alloc(100));
  assert.is(new FrameScanner(atLimit.length).scan(atLimit), undefined);
  const over = new FrameScanner(atLimit.length - 1).scan(atLimit);
  assert.equal(over, { reason: 'too-large', packetType: 3, declaredBytes: atLimit.length });
});

test('scanner refuses on the header alone, before any body byte', () => {
  const head = publishHead('big', 5 * 1024 * 1024).subarray(0, 5); // type byte + 4 length bytes
  const violation = scanBytewise(new FrameScanner(256 * 1024), head);
  assert.is(violation?.reason, 'too-large');
  assert.ok(violation!.declaredBytes! > 5 * 1024 * 1024);
});

test('scanner refuses a remaining length longer than four bytes', () => {
  const violation = new FrameScanner(1024).scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
  assert.equal(violation, { reason: 'malformed-length', packetType: 3, declaredBytes: undefined });
});

test('scanner reads the largest four-byte length correctly', () => {
  const violation = new FrameScanner(1024).scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
  assert.is(violation?.declaredBytes, 1 + 4 + 268_435_455);
});

test('scanner stays refused once violated', () => {
  const scanner = new FrameScanner(16);
  assert.ok(scanner.scan(publishFrame('t', Buffer.alloc(64))));
  assert.ok(scanner.scan(PINGREQ), 'nothing after a violation is trusted');
});

test('scanner rejects a limit below the smallest packet', () => {
  assert.throws(() => new FrameScanner(1), /maxPacketBytes/);
  assert.throws(() => new FrameScanner(1.5), /maxPacketBytes/);
});

// ---- guardStream over an in-memory pair --------------------------------------

interface Guarded {
  client: Duplex;
  conn: Duplex;
  guard: Duplex;
  violations: PacketGuardViolation[];
  errors: Error[];
}

function guardedPair(maxPacketBytes: number): Guarded {
  const [client, conn] = duplexPair();
  const violations: PacketGuardViolation[] = [];
  const errors: Error[] = [];
  const guard = guardStream(conn, maxPacketBytes, (v) => violations.push(v));
  guard.on('error', (e) => errors.push(e));
  return { client, conn, guard, violations, errors };
}

function readAll(stream: Duplex): Buffer[] {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return chunks;
}

test('guard passes bytes through unchanged in both directions', bounded(async (scope) => {
  const { client, guard } = guardedPair(1024);
  scope.defer(() => client.destroy());
  const inbound = readAll(guard);
  const outbound = readAll(client);
  const sent = Buffer.concat([connectFrame('x'), publishFrame('a', Buffer.from('hello')), PINGREQ]);
  client.write(sent.subarray(0, 7));
  client.write(sent.subarray(7));
  guard.write(Buffer.from([0x20, 0x02, 0x00, 0x00])); // CONNACK
  await waitFor(() => Buffer.concat(inbound).length === sent.length && outbound.length > 0);
  assert.ok(Buffer.concat(inbound).equals(sent));
  assert.equal([...Buffer.concat(outbound)], [0x20, 0x02, 0x00, 0x00]);
}));

test('guard cuts both sides on an oversized packet and reports it once', bounded(async () => {
  const { client, conn, guard, violations, errors } = guardedPair(1024);
  const inbound = readAll(guard);
  const clientClosed = nextEvent(client, 'close');
  const guardClosed = nextEvent(guard, 'close');
  client.write(PINGREQ);
  client.write(publishHead('big', 10_000));
  client.write(Buffer.alloc(2000)); // body bytes after the cut must not be reported again
  await Promise.all([clientClosed, guardClosed]);
  assert.ok(conn.destroyed);
  assert.is(violations.length, 1);
  assert.equal(violations[0], {
    reason: 'too-large',
    packetType: 3,
    declaredBytes: 1 + 2 + 5 + 10_000,
    maxPacketBytes: 1024,
    remoteAddress: undefined,
  });
  assert.instance(errors[0], PacketGuardError, 'aedes hears why through an error');
  assert.ok(Buffer.concat(inbound).length <= PINGREQ.length, 'no byte of the oversized packet passed');
}));

test('destroying the guard closes the connection and reaches the peer', bounded(async () => {
  const { client, conn, guard } = guardedPair(1024);
  const clientClosed = nextEvent(client, 'close');
  guard.destroy();
  await clientClosed;
  assert.ok(conn.destroyed);
}));

test('the peer closing destroys the guard (aedes sees close)', bounded(async () => {
  const { client, guard } = guardedPair(1024);
  const guardClosed = nextEvent(guard, 'close');
  client.destroy();
  await guardClosed;
  assert.ok(guard.destroyed);
}));

test('the peer ending is an end on the guard', bounded(async (scope) => {
  const { client, guard } = guardedPair(1024);
  scope.defer(() => client.destroy());
  guard.resume();
  const guardEnded = nextEvent(guard, 'end');
  client.end();
  await guardEnded;
}));

test('guard pauses the connection while its reader lags, and loses nothing', bounded(async (scope) => {
  const { client, conn, guard } = guardedPair(4 * 1024 * 1024);
  scope.defer(() => client.destroy());
  const body = 1024 * 1024;
  client.write(publishHead('t', body));
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  for (let sent = 0; sent < body; sent += chunk.length) client.write(chunk);
  await waitFor(() => conn.isPaused(), { label: 'connection paused' });
  assert.ok(client.writableLength > 0, 'the writer is held back instead of the guard buffering');
  const inbound = readAll(guard);
  const expected = publishHead('t', body).length + body;
  await waitFor(() => Buffer.concat(inbound).length === expected, { label: 'all bytes delivered' });
}));

// ---- duplexPair ---------------------------------------------------------------

test('duplexPair: destroy on either side reaches the other', bounded(async () => {
  for (const side of [0, 1] as const) {
    const pair = duplexPair();
    const other = pair[1 - side]!;
    const otherClosed = nextEvent(other, 'close');
    pair[side].destroy();
    await otherClosed;
    assert.ok(other.destroyed);
  }
}));

test.run();
