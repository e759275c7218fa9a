import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AuthorizePublishHook } from '../broker/index.js';
import {
  closed,
  memoryClient,
  NO_RECONNECT,
  nextMessage,
  rawSocket,
  retainedNow,
  roundTrip,
  startBroker,
  streamZeros,
  tcpClient,
} from './helpers/broker.js';
import { nextEvent } from './helpers/events.js';
import { connectFrame, publishFrame, publishHead } from './helpers/mqtt-bytes.js';
import { bounded } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';

// ---- publish / subscribe ----------------------------------------------------

test('in-memory clients round-trip a publish', bounded(async (scope) => {
  const broker = await startBroker(scope, { listen: false });
  assert.is(broker.url, undefined);
  const sub = await memoryClient(scope, broker);
  const pub = await memoryClient(scope, broker);
  await roundTrip(sub, pub, 'edgefed/test/memory', 'hello in memory');
}));

test('TCP clients round-trip a publish on an ephemeral port', bounded(async (scope) => {
  const broker = await startBroker(scope);
  assert.ok(broker.port! > 0, 'port 0 is read back as the bound port');
  assert.is(broker.url, `mqtt://127.0.0.1:${broker.port}`);
  const sub = await tcpClient(scope, broker);
  const pub = await tcpClient(scope, broker);
  await roundTrip(sub, pub, 'edgefed/test/tcp', 'hello over tcp');
}));

test('a TCP and an in-memory client see each other', bounded(async (scope) => {
  const broker = await startBroker(scope);
  await roundTrip(await memoryClient(scope, broker), await tcpClient(scope, broker), 'mixed/a', 'tcp to memory');
}));

test('a retained message reaches a late subscriber', bounded(async (scope) => {
  const broker = await startBroker(scope);
  const pub = await tcpClient(scope, broker);
  await pub.publishAsync('edgefed/test/retained', 'kept', { qos: 1, retain: true });
  const late = await memoryClient(scope, broker);
  const received = nextMessage(late, 'edgefed/test/retained');
  await late.subscribeAsync('edgefed/test/retained');
  const message = await received;
  assert.is(message.payload, 'kept');
  assert.ok(message.retain, 'delivered with the retain flag');
}));

test('an in-memory client reconnects through a fresh pair', bounded(async (scope) => {
  const broker = await startBroker(scope, { listen: false, maxPacketBytes: 1024 });
  const client = await memoryClient(scope, broker, { reconnectPeriod: 20 });
  client.on('error', () => undefined);
  client.publish('too/big', Buffer.alloc(4096));
  await closed(client);
  await nextEvent(client, 'connect');
  assert.is(broker.stats.packetGuardDrops, 1);
  await roundTrip(client, client, 'after/reconnect', 'still here');
}));

// ---- packet guard -----------------------------------------------------------

test('a 300 KiB publish cuts its connection; others keep working; nothing retained', bounded(async (scope) => {
  const broker = await startBroker(scope); // default limit: 256 KiB
  const bystander = await tcpClient(scope, broker);
  await bystander.publishAsync('big/control', 'small', { qos: 1, retain: true });

  const offender = await tcpClient(scope, broker);
  offender.on('error', () => undefined);
  const offenderClosed = closed(offender);
  offender.publish('big/payload', Buffer.alloc(300 * 1024, 0x61), { qos: 0, retain: true });
  await offenderClosed;
  assert.is(broker.stats.packetGuardDrops, 1);

  await roundTrip(bystander, bystander, 'big/after', 'bystander unaffected');

  const late = await memoryClient(scope, broker);
  const seen = await retainedNow(late, 'big/#', { qos: 0 });
  assert.equal(seen.map((m) => m.topic), ['big/control'], 'the oversized publish was never retained');
}));

test('a 5 MB publish is cut at its header without buffering the body', bounded(async (scope) => {
  const broker = await startBroker(scope);
  const published: string[] = [];
  broker.aedes.on('publish', (packet) => published.push(packet.topic));

  const socket = await rawSocket(scope, broker.port!);
  const socketClosed = closed(socket);
  socket.write(connectFrame('raw-5mb'));
  await withTimeout(nextEvent(socket, 'data'), 1000, 'CONNACK'); // aedes has accepted the client

  const rssBefore = process.memoryUsage().rss;
  const payloadBytes = 5 * 1024 * 1024;
  socket.write(publishHead('huge/payload', payloadBytes));
  await streamZeros(socket, payloadBytes);
  await socketClosed;
  const growth = process.memoryUsage().rss - rssBefore;

  assert.is(broker.stats.packetGuardDrops, 1);
  assert.not.ok(published.includes('huge/payload'), 'the publish never reached aedes');
  assert.ok(growth < 2.5 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(1)} MiB`);
}));

test('garbage bytes are dropped without harming the broker', bounded(async (scope) => {
  const broker = await startBroker(scope, { connectTimeoutMs: 500 });
  const garbage: Array<[string, Buffer]> = [
    ['malformed remaining length', Buffer.alloc(16, 0xff)],
    ['reserved packet type 0', Buffer.from([0x00, 0x00, 0x00, 0x00])],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: broker\r\n\r\n')],
    ['PUBLISH before CONNECT', publishFrame('sneaky/topic', Buffer.from('x'))],
  ];
  for (const [name, bytes] of garbage) {
    const socket = await rawSocket(scope, broker.port!);
    const socketClosed = closed(socket);
    socket.write(bytes);
    await withTimeout(socketClosed, 2000, `broker closing on ${name}`);
  }
  const client = await memoryClient(scope, broker);
  await roundTrip(client, client, 'after/garbage', 'alive');
}));

// ---- hooks ------------------------------------------------------------------

test('$SYS/ publishes are refused even with a custom authorizePublish', bounded(async (scope) => {
  const asked: string[] = [];
  const allowAll: AuthorizePublishHook = (_client, packet, callback) => {
    asked.push(packet.topic);
    callback(null);
  };
  const broker = await startBroker(scope, { listen: false, authorizePublish: allowAll });
  const client = await memoryClient(scope, broker);
  await roundTrip(client, client, 'ordinary/topic', 'allowed');
  assert.equal(asked, ['ordinary/topic']);

  const clientClosed = closed(client);
  client.publish('$SYS/x', 'forged');
  await clientClosed;
  assert.equal(asked, ['ordinary/topic'], 'the hook never saw the $SYS publish');
}));

// ---- shutdown ---------------------------------------------------------------

function openHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind === 'TCPServerWrap' || kind === 'TCPSocketWrap' || kind === 'Timeout') counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

test('close() cuts every connection and leaves no handle behind', bounded(async (scope) => {
  await Promise.resolve(); // let the test's own timeout timer exist before taking the baseline
  const before = openHandles();
  const broker = await startBroker(scope, { heartbeatIntervalMs: 50 });
  const tcp = await tcpClient(scope, broker);
  const memory = await memoryClient(scope, broker);
  const silent = await rawSocket(scope, broker.port!); // never sends CONNECT: aedes does not list it
  const allClosed = Promise.all([closed(tcp), closed(memory), closed(silent)]);

  await broker.close();
  await allClosed;
  await broker.close(); // idempotent
  const afterClose = broker.connectInMemory(NO_RECONNECT);
  scope.defer(() => afterClose.endAsync(true));
  await withTimeout(nextEvent(afterClose, 'close'), 1000, 'a connection after close() being turned away');
  // At most what there was before: a timer of an earlier test may end meanwhile, but none of ours may stay.
  const leaked = () => Object.entries(openHandles()).filter(([kind, n]) => n > (before[kind] ?? 0));
  await waitFor(() => leaked().length === 0, { timeoutMs: 1000 }).catch(() => undefined);
  assert.equal(leaked(), [], `sockets, servers and timers are back to where they were (before: ${JSON.stringify(before)})`);
}));

test.run();
