/**
 * Regression: a burst that fills aedes's message bus with messages nobody
 * subscribes to used to overflow the stack and kill the broker process
 * (mqemitter's synchronous release chain, mcollina/mqemitter#204).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker } from '../broker/index.js';
import { waitFor, withTimeout } from './helpers/time.js';

test('a burst of unsubscribed messages behind a full bus neither crashes nor loses subscribed ones', () => withTimeout((async () => {
  const broker = await createBroker({ port: 0, busConcurrency: 100 }); // aedes's default bound, where the queue forms
  const clients: MqttClient[] = [];
  try {
    const sub = await mqtt.connectAsync(broker.url!, { clientId: 'sub', reconnectPeriod: 0 });
    clients.push(sub);
    let got = 0;
    sub.on('message', () => { got += 1; });
    await sub.subscribeAsync('a/#', { qos: 0 });
    for (let i = 0; i < 20; i += 1) clients.push(await mqtt.connectAsync(broker.url!, { clientId: `p${i}`, reconnectPeriod: 0 }));
    for (const p of clients.slice(1)) {
      for (let k = 0; k < 200; k += 1) p.publish('a/x', 'x');
      for (let k = 0; k < 5000; k += 1) p.publish('nobody/listens', 'y');
    }
    await waitFor(() => got === 20 * 200, { timeoutMs: 20_000, label: 'all subscribed messages delivered' });
    assert.is(got, 4000);
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker.close();
  }
})(), 30_000, 'burst'));

test.run();
