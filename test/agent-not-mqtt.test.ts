/**
 * `--broker mqtt://host:8080` (the hub's HTTP port) looped on "Invalid header
 * flag bits": the agent now says that the port does not speak MQTT and which
 * port to give, in the line it logs anyway (at 1, 2, 4... failures).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent } from '../agent/index.js';
import { jsonLogger } from '../lib/log.js';
import { bounded } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

test('an agent pointed at an HTTP port says the port does not speak MQTT', bounded(async (scope) => {
  const srv = http.createServer((_req, res) => res.end('not mqtt')).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  scope.defer(() => new Promise((r) => srv.close(r)));
  const { port } = srv.address() as AddressInfo;
  const lines: Array<{ level: number; msg: string; hint?: string }> = [];
  const agent = await startAgent({
    nodeId: 'x', capabilities: ['m'], brokerUrl: `mqtt://127.0.0.1:${port}`, reconnectMinMs: 50, reconnectMaxMs: 100,
    logger: jsonLogger('info', {}, { write: (l: string) => void lines.push(JSON.parse(l)) }),
  });
  scope.defer(() => agent.stop());
  const line = await waitFor(() => lines.find((l) => l.level === 40 && l.hint), { timeoutMs: 3000, label: 'the hint' });
  assert.match(line.msg, /does not speak MQTT \(an HTTP port such as the hub's 8080\?\); give the MQTT port, 1883 by default/);
}));

test.run();
