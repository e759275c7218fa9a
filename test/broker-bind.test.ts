import mqtt from 'mqtt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker, isLoopbackHost } from '../broker/index.js';
import { NO_RECONNECT, startBroker } from './helpers/broker.js';
import { bounded } from './helpers/scope.js';

// ---- bind policy ------------------------------------------------------------

test('a non-loopback host without auth or insecure is refused', bounded(async () => {
  for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
    const outcome = await createBroker({ host, port: 0 }).then(
      (broker) => broker.close().then(() => 'listening'),
      (error: Error) => error.message,
    );
    assert.match(outcome, /^EDGEFED_ERR_INSECURE_BIND: /, host);
    assert.match(outcome, /--insecure/);
  }
}));

test('isLoopbackHost knows 127.0.0.0/8, ::1 and localhost', () => {
  for (const host of ['127.0.0.1', '127.255.0.9', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) {
    assert.ok(isLoopbackHost(host), host);
  }
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'example.com', '::ffff:10.0.0.1', '127.0.0.1.example.com']) {
    assert.not.ok(isLoopbackHost(host), host);
  }
});

test('loopback hosts need no auth', bounded(async (scope) => {
  for (const host of ['127.0.0.1', 'localhost', '127.0.0.2']) {
    const broker = await startBroker(scope, { host });
    assert.ok(broker.port! > 0);
    await broker.close();
  }
}));

test('insecure: true allows binding 0.0.0.0', bounded(async (scope) => {
  const broker = await startBroker(scope, { host: '0.0.0.0', insecure: true });
  assert.is(broker.url, `mqtt://0.0.0.0:${broker.port}`);
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, NO_RECONNECT);
  scope.defer(() => client.endAsync(true));
  await broker.close();
}));

test('an authenticate hook counts as auth for the bind rule', bounded(async (scope) => {
  const broker = await startBroker(scope, {
    host: '0.0.0.0',
    authenticate: (_client, username, _password, done) => {
      if (username === 'node') return done(null, true);
      done(Object.assign(new Error('bad credentials'), { returnCode: 4 as const }), false);
    },
  });
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const refused = await mqtt.connectAsync(url, { ...NO_RECONNECT, username: 'intruder' }).then(
    (client) => client.endAsync(true).then(() => 'connected'),
    (error: Error) => error.message,
  );
  assert.match(refused, /Bad username or password/i);
  const accepted = await mqtt.connectAsync(url, { ...NO_RECONNECT, username: 'node' });
  scope.defer(() => accepted.endAsync(true));
}));

test('invalid options are refused with EDGEFED_ERR_BROKER_OPTION', bounded(async () => {
  for (const options of [{ port: -1 }, { port: 70_000 }, { maxPacketBytes: 1 }, { heartbeatIntervalMs: 0 }, { host: '' }]) {
    const outcome = await createBroker({ listen: false, ...options }).then(
      (broker) => broker.close().then(() => 'created'),
      (error: Error) => error.message,
    );
    assert.match(outcome, /^EDGEFED_ERR_BROKER_OPTION: /, JSON.stringify(options));
  }
}));

test('a port in use rejects and leaves nothing running', bounded(async (scope) => {
  const first = await startBroker(scope);
  const outcome = await createBroker({ port: first.port! }).then(
    (broker) => broker.close().then(() => 'created'),
    (error: NodeJS.ErrnoException) => error.code,
  );
  assert.is(outcome, 'EADDRINUSE');
}));

test.run();
