/** Retained messages through the exact-topic index: same answers as aedes's pattern scan. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker } from '../broker/index.js';
import { retainedNow } from './helpers/broker.js';
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
    await waitFor(() => sub.connected, { label: 'sub connected' });
    const retained = async (patterns: string | string[], qos: 0 | 1) =>
      (await retainedNow(sub, patterns, { qos })).filter((m) => m.retain).map((m) => `${m.topic}=${m.payload}`);
    assert.equal((await retained(['a/1', 'a/2', 'b/+'], 1)).sort(), ['a/1=one', 'b/1=three']);
    assert.equal(await retained('a/#', 0), ['a/1=one']);
  } finally {
    await Promise.all([pub.endAsync(true), sub.endAsync(true)]);
    await broker.close();
  }
})(), 5000, 'retained index'));

test.run();
