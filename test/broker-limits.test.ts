/**
 * The connection gate as `createBroker` wires it: on the broker's own TCP
 * listener, configured through BrokerOptions, counted in `stats.connections`.
 */
import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker } from '../broker/index.js';
import { silentLogger } from '../lib/log.js';
import { connectFrame } from './helpers/mqtt-bytes.js';
import { bounded } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';

const test = suite('broker: connection limits on its own listener');

/**
 * Opens a raw TCP connection, sends a CONNECT and resolves whether the broker
 * served it (a CONNACK came) or refused it (closed it unanswered): an event
 * either way, nothing to wait out.
 */
function served(port: number, clientId: string): Promise<boolean> {
  const socket = net.connect(port, '127.0.0.1');
  return withTimeout(new Promise<boolean>((resolve) => {
    socket.on('error', () => undefined);
    socket.once('connect', () => socket.write(connectFrame(clientId)));
    socket.once('data', () => resolve(true));
    socket.once('close', () => resolve(false));
  }), 2000, 'raw connect').finally(() => socket.destroy());
}

test('per-address rate (loopback not exempt) and the global limit refuse at accept, and are counted', bounded(async (scope) => {
  const broker = await createBroker({ port: 0, logger: silentLogger, exemptLoopback: false, connectRatePerAddress: 1, connectBurstPerAddress: 2, maxConnections: 100 });
  scope.defer(() => broker.close());
  const results = [];
  for (let i = 0; i < 4; i++) results.push(await served(broker.port!, `raw-${i}`));
  assert.equal(results.slice(0, 2), [true, true], 'the burst is admitted');
  assert.ok(results.slice(2).includes(false), 'beyond it, refused');
  await waitFor(() => (broker.stats.connections?.refused.rate ?? 0) >= 1, { label: 'counted' });
}));

test('a bad limit is refused before anything listens', async () => {
  const err = await createBroker({ port: 0, logger: silentLogger, maxConnections: -1 }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, /EDGEFED_ERR_BROKER_OPTION/);
});

test.run();
