/** Retained messages through the exact-topic index: same answers as aedes's pattern scan. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker } from '../broker/index.js';
import { waitFor, withTimeout } from './helpers/time.js';

test('exact and wildcard subscriptions get the retained messages; an empty payload deletes', () => withTimeout((async () => {
  const broker = await createBroker({ listen: false });
  const pub = broker.connectInMemory({ clientId: 'pub', reconnectPeriod: 0 });
  const sub = broker.connectInMemory({ clientId: 'sub', reconnectPeriod: 0 });
  try {
    await pub.publishAsync('a/1', 'one', { qos: 1, retain: true });
    await pub.publishAsync('a/2', 'two', { qos: 1, retain: true });
    await pub.publishAsync('b/1', 'three', { qos: 1, retain: true });
    await pub.publishAsync('a/2', '', { qos: 1, retain: true }); // deleted
    const seen: string[] = [];
    sub.on('message', (topic, payload, packet) => { if (packet.retain) seen.push(`${topic}=${payload.toString()}`); });
    await sub.subscribeAsync(['a/1', 'a/2', 'b/+'], { qos: 1 });
    await waitFor(() => seen.length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(seen.sort(), ['a/1=one', 'b/1=three']);
    seen.length = 0;
    await sub.subscribeAsync('a/#', { qos: 0 });
    await waitFor(() => seen.length >= 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(seen, ['a/1=one']);
  } finally {
    await Promise.all([pub.endAsync(true), sub.endAsync(true)]);
    await broker.close();
  }
})(), 5000, 'retained index'));

test.run();
