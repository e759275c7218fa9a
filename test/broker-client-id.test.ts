/**
 * MQTT-3.1.3-8: an empty client id with clean session 0 gets CONNACK 2
 * (identifier rejected) and changes nothing; with clean session 1 the
 * broker still assigns an id, as MQTT 3.1.1 says.
 */
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { api, federation } from './helpers/federation.js';
import { connectFrame } from './helpers/mqtt-bytes.js';
import { bounded } from './helpers/scope.js';
import { withTimeout } from './helpers/time.js';
import type { ApiHealth } from '../lib/api.js';

/** Sends one CONNECT and answers the CONNACK's return code. */
async function connack(port: number, frame: Buffer): Promise<number> {
  const sock = connect(port, '127.0.0.1');
  try {
    const reply = await withTimeout(new Promise<Buffer>((resolve, reject) => {
      sock.once('data', resolve);
      sock.once('error', reject);
      sock.write(frame);
    }), 3000, 'CONNACK');
    assert.is(reply[0], 0x20, 'a CONNACK');
    return reply[3]!;
  } finally {
    sock.destroy();
  }
}

test('an empty client id needs clean session: CONNACK 2 otherwise, counted', bounded(async (scope) => {
  const fed = await federation({ mqttListen: true });
  scope.defer(() => fed.stop());
  const port = Number(new URL(fed.mqttUrl!).port);
  assert.is(await connack(port, connectFrame('', undefined, { clean: false })), 2, 'identifier rejected');
  assert.is(await connack(port, connectFrame('', undefined, { clean: true })), 0, 'a clean session gets an id from the broker');
  assert.is(await connack(port, connectFrame('dev-1', undefined, { clean: false })), 0, 'a persistent session with an id is fine');
  const health = (await api<ApiHealth>(fed, '/health')).body;
  assert.is(health.broker?.identifier_rejected, 1);
}));

test.run();
