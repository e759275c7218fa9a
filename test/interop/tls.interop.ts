/**
 * TLS with the real mosquitto clients: certificates from `edgefed certs dev`,
 * a real `edgefed start --tls-cert ... --mqtts-port 0`, and
 * `mosquitto_sub --cafile ca.pem -h localhost -p <port>` as the docs tell
 * users to run it; then mutual TLS with `--cert/--key`.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from '../helpers/time.js';
import { httpsGet } from '../helpers/tls.js';
import { killStrays, MosquittoSub, mosquittoPub, mosquittoSubOnce, registration, SharedHub, topic, within, type HubProcess } from './helpers.js';
import { CLI_ARGS } from '../helpers/cli.js';

// Fixed before the hubs are built (their flags name these files); filled by the first test that needs them.
const CERTS = path.join(os.tmpdir(), `edgefed-interop-tls-${process.pid}`);
const file = (name: string) => path.join(CERTS, name);
const SERVER_FLAGS = ['--tls-cert', file('server.pem'), '--tls-key', file('server-key.pem'), '--mqtts-port', '0'];

const serverTls = new SharedHub('edgefed-interop-tls-', SERVER_FLAGS);
const mutualTls = new SharedHub('edgefed-interop-mtls-', [...SERVER_FLAGS, '--tls-ca', file('ca.pem')]);

let certsMade: Promise<void> | undefined;
function makeCerts(): Promise<void> {
  certsMade ??= new Promise((resolve, reject) => {
    execFile(process.execPath, [...CLI_ARGS, 'certs', 'dev', '--out', CERTS], { timeout: 20_000 }, (error, _out, stderr) =>
      (error ? reject(new Error(`edgefed certs dev failed: ${stderr}`)) : resolve()));
  });
  return certsMade;
}

/** The hub's mqtts port, from its "edgefed ready" line. */
function mqttsPort(hub: HubProcess): string {
  for (const line of hub.lines) {
    const rec = (() => { try { return JSON.parse(line) as { msg?: string; mqtts_url?: string }; } catch { return {}; } })();
    if (rec.msg === 'edgefed ready' && rec.mqtts_url) return new URL(rec.mqtts_url).port;
  }
  throw new Error(`no mqtts_url in the ready line:\n${hub.lines.join('\n')}`);
}

/** mosquitto client arguments for the mqtts listener, by name, so the certificate's DNS:localhost is checked. */
async function tlsBroker(shared: SharedHub, extra: string[] = []): Promise<{ hub: HubProcess; args: string[] }> {
  await makeCerts();
  const { hub } = await shared.get();
  return { hub, args: ['-h', 'localhost', '-p', mqttsPort(hub), '--cafile', file('ca.pem'), ...extra] };
}

const test = suite('interop: mosquitto clients over TLS');
test.after.each(() => killStrays());
test.after(async () => {
  await serverTls.close();
  await mutualTls.close();
  await fs.rm(CERTS, { recursive: true, force: true });
});

test('mosquitto_sub --cafile ca.pem -h localhost sees edgefed/v1/hub/status over mqtts', within(30_000, 'mqtts sub', async () => {
  const { args } = await tlsBroker(serverTls);
  const sub = await MosquittoSub.start(args, ['-t', 'edgefed/#', '-W', '10']);
  const status = await sub.ready(5000);
  assert.is((JSON.parse(status.payload) as { state: string }).state, 'online');
}));

test('mosquitto_pub over mqtts registers a node the HTTPS API lists', within(30_000, 'mqtts pub', async () => {
  const { hub, args } = await tlsBroker(serverTls);
  await mosquittoPub(args, ['-r', '-q', '1', '-t', topic.registration('tls-dev-1'), '-m', JSON.stringify(registration('tls-dev-1'))]);
  const ca = await fs.readFile(file('ca.pem'));
  const node = await waitFor(async () => {
    const res = await httpsGet(`${hub.httpUrl}/federation/nodes/tls-dev-1`, { ca });
    return res.status === 200 ? (JSON.parse(res.body) as { status: string }) : undefined;
  }, { timeoutMs: 3000, intervalMs: 50, label: 'tls-dev-1 listed over HTTPS' });
  assert.is(node.status, 'active');
}));

test('mosquitto_sub without --cafile gets nothing from the mqtts port', within(30_000, 'mqtts without CA', async () => {
  const { hub } = await tlsBroker(serverTls);
  const r = await mosquittoSubOnce(['-h', 'localhost', '-p', mqttsPort(hub)], ['-t', topic.hubStatus, '-C', '1', '-W', '3']);
  assert.is(r.messages.length, 0, JSON.stringify(r.messages));
  assert.is.not(r.code, 0);
}));

test('mutual TLS: --cert/--key of the dev client is let in, no client certificate is not', within(30_000, 'mutual TLS', async () => {
  const { args } = await tlsBroker(mutualTls);
  const refused = await mosquittoSubOnce(args, ['-t', topic.hubStatus, '-C', '1', '-W', '3']);
  assert.is(refused.messages.length, 0, 'subscribed without a client certificate');
  assert.is.not(refused.code, 0);
  const admitted = await mosquittoSubOnce([...args, '--cert', file('client.pem'), '--key', file('client-key.pem')], ['-t', topic.hubStatus, '-C', '1', '-W', '5']);
  assert.is(admitted.code, 0, admitted.stderr);
  assert.is(admitted.messages[0]?.topic, topic.hubStatus);
}));

test.run();
