/**
 * TLS in one process: the embedded broker's mqtts listener (server TLS and
 * mutual TLS), `plain: false`, the HTTPS API, and the refusals of unusable
 * TLS material. Certificates come from `generateDevCerts` (the openssl binary).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { MqttClient } from 'mqtt';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createBroker, TlsMaterialError, type BrokerTlsOptions } from '../broker/index.js';
import type { Federation, FederationOptions } from '../server/federation.js';
import { closeAll, federation, registration } from './helpers/federation.js';
import { connectFrame, publishHead } from './helpers/mqtt-bytes.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';
import { devCerts, httpsGet, tryConnect, type Attempt, type DevCerts } from './helpers/tls.js';

interface Ctx { certs?: Promise<DevCerts> }
const test = suite<Ctx>('tls');
// Lazily, from the first test: a `before` hook that throws is swallowed by uvu 0.5.
const certsOf = (ctx: Ctx) => (ctx.certs ??= devCerts());
test.after(async (ctx) => { await (await ctx.certs?.catch(() => undefined))?.remove(); });

/** Registers `test(name)` with the suite's context, a Scope and a time bound. */
function T(name: string, body: (certs: DevCerts, scope: Scope) => Promise<void>, timeoutMs = 8000): void {
  test(name, async (ctx) => {
    const certs = await certsOf(ctx);
    await bounded((scope) => body(certs, scope), { timeoutMs, label: name })();
  });
}

function serverTls(certs: DevCerts, extra: Partial<BrokerTlsOptions> = {}): BrokerTlsOptions {
  return { cert: certs.server, key: certs.serverKey, port: 0, ...extra };
}

async function tlsFederation(scope: Scope, certs: DevCerts, opts: Partial<FederationOptions> = {}): Promise<Federation> {
  const fed = await federation({ mqttListen: true, tls: serverTls(certs), ...opts });
  scope.defer(() => fed.stop());
  return fed;
}

function connected(scope: Scope, attempt: Attempt, label: string): MqttClient {
  if (!attempt.ok) throw new Error(`${label}: refused (${attempt.reason})`);
  const { client } = attempt;
  scope.defer(() => closeAll(client));
  return client;
}

T('an mqtts client that trusts the CA registers a node the hub sees', async (certs, scope) => {
  const fed = await tlsFederation(scope, certs);
  assert.match(fed.mqttsUrl ?? '', /^mqtts:\/\/127\.0\.0\.1:\d+$/);
  assert.match(fed.mqttUrl ?? '', /^mqtt:\/\//, 'the plain listener stays on by default');
  const client = connected(scope, await tryConnect(fed.mqttsUrl!, { clientId: 'edge-tls-1', ca: certs.ca }), 'client with CA');
  await client.publishAsync(fed.hub.topics.registration('edge-tls-1'), JSON.stringify(registration('edge-tls-1')), { qos: 1, retain: true });
  const node = await waitFor(() => fed.hub.node('edge-tls-1'), { label: 'node registered over mqtts' });
  assert.is(node.status, 'active');
});

T('an mqtts client without the CA is refused in the handshake', async (certs, scope) => {
  const fed = await tlsFederation(scope, certs);
  const attempt = await tryConnect(fed.mqttsUrl!, { clientId: 'no-ca' });
  assert.not.ok(attempt.ok, 'connected without trusting the CA');
  if (!attempt.ok) assert.match(attempt.reason, /CERT|SIGNATURE|VERIFY/, attempt.reason);
  assert.is(fed.hub.nodes().length, 0);
});

T('plain MQTT spoken to the mqtts port gets no session', async (certs, scope) => {
  const fed = await tlsFederation(scope, certs);
  const attempt = await tryConnect(fed.mqttsUrl!.replace('mqtts:', 'mqtt:'), { clientId: 'plain-on-tls', connectTimeout: 1000 });
  assert.not.ok(attempt.ok);
  await waitFor(() => fed.broker!.stats.tlsHandshakeFailures >= 1, { label: 'handshake failure counted' });
});

T('mutual TLS: no client certificate or another CA\'s is refused, the CA-signed one connects', async (certs, scope) => {
  const fed = await tlsFederation(scope, certs, { tls: serverTls(certs, { ca: certs.ca }) });
  const without = await tryConnect(fed.mqttsUrl!, { clientId: 'no-cert', ca: certs.ca });
  assert.not.ok(without.ok, 'connected without a client certificate');
  await waitFor(() => fed.broker!.stats.tlsHandshakeFailures >= 1, { label: 'refusal counted' });
  const stranger = await devCerts();
  scope.defer(() => stranger.remove());
  const foreign = await tryConnect(fed.mqttsUrl!, { clientId: 'foreign-cert', ca: certs.ca, cert: stranger.client, key: stranger.clientKey });
  assert.not.ok(foreign.ok, 'connected with a certificate another CA signed');
  const withCert = await tryConnect(fed.mqttsUrl!, { clientId: 'with-cert', ca: certs.ca, cert: certs.client, key: certs.clientKey });
  const client = connected(scope, withCert, 'client with certificate');
  await client.publishAsync(fed.hub.topics.registration('with-cert'), JSON.stringify(registration('with-cert')), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node('with-cert'), { label: 'node registered over mutual TLS' });
});

T('plain: false leaves mqtts as the only listener', async (certs, scope) => {
  const fed = await tlsFederation(scope, certs, { plain: false });
  assert.is(fed.mqttUrl, undefined);
  assert.is(fed.broker!.port, undefined);
  assert.ok(fed.broker!.tlsPort! > 0);
  connected(scope, await tryConnect(fed.mqttsUrl!, { clientId: 'only-tls', ca: certs.ca }), 'mqtts with plain off');
});

T('the packet guard stands behind the mqtts listener too', async (certs, scope) => {
  const fed = await tlsFederation(scope, certs, { maxPacketBytes: 4096 });
  const socket = tls.connect({ host: '127.0.0.1', port: fed.broker!.tlsPort!, ca: certs.ca });
  scope.defer(() => socket.destroy());
  socket.on('error', () => undefined); // the cut may surface as ECONNRESET
  socket.resume(); // read the CONNACK: a paused socket never reaches 'end' and 'close'
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(connectFrame('big-sender'));
  socket.write(publishHead('edgefed/v1/nodes/x/registration', 1024 * 1024));
  await closed;
  assert.is(fed.broker!.stats.packetGuardDrops, 1);
});

T('the HTTP API is served over HTTPS: /health with the CA, plain HTTP refused', async (certs, scope) => {
  const fed = await tlsFederation(scope, certs);
  assert.match(fed.api.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const health = await httpsGet(`${fed.api.url}/health`, { ca: certs.ca });
  assert.is(health.status, 200);
  assert.is((JSON.parse(health.body) as { status: string }).status, 'ok');
  const untrusted = await httpsGet(`${fed.api.url}/health`, {}).then(() => 'answered', (err: NodeJS.ErrnoException) => err.code ?? err.message);
  assert.match(untrusted, /CERT|SIGNATURE|VERIFY/);
  const plain = await fetch(`${fed.api.url.replace('https:', 'http:')}/health`, { signal: AbortSignal.timeout(3000) }).then(
    (res) => `HTTP ${res.status}`,
    () => 'refused',
  );
  assert.is(plain, 'refused');
});

T('HTTPS with mutual TLS answers only a client with a CA-signed certificate', async (certs, scope) => {
  const fed = await tlsFederation(scope, certs, { tls: serverTls(certs, { ca: certs.ca }) });
  const without = await httpsGet(`${fed.api.url}/health`, { ca: certs.ca }).then((r) => `HTTP ${r.status}`, () => 'refused');
  assert.is(without, 'refused');
  const withCert = await httpsGet(`${fed.api.url}/health`, { ca: certs.ca, cert: certs.client, key: certs.clientKey });
  assert.is(withCert.status, 200);
});

T('unusable TLS material is refused before anything listens, naming the field', async (certs) => {
  const cases: Array<[Partial<BrokerTlsOptions>, string, RegExp]> = [
    [{ cert: 'not a certificate' }, 'cert', /not a PEM certificate/],
    [{ key: certs.server }, 'key', /not a PEM private key/],
    [{ key: certs.clientKey }, 'key', /does not match the certificate/],
    [{ ca: certs.serverKey }, 'ca', /not a PEM certificate/],
  ];
  for (const [bad, field, message] of cases) {
    const outcome = await createBroker({ port: 0, tls: serverTls(certs, bad) }).then(
      async (broker) => { await broker.close(); return undefined; },
      (err: unknown) => err,
    );
    assert.instance(outcome, TlsMaterialError, field);
    const err = outcome as TlsMaterialError;
    assert.is(err.field, field);
    assert.is(err.code, 'EDGEFED_ERR_TLS');
    assert.match(err.message, message);
  }
});

T('plain: false without tls is an option error', async () => {
  const outcome = await createBroker({ port: 0, plain: false }).then(
    async (broker) => { await broker.close(); return 'started'; },
    (err: Error) => err.message,
  );
  assert.match(outcome, /^EDGEFED_ERR_BROKER_OPTION: plain: false/);
});

T('a taken mqtts port fails with EDGEFED_ERR_MQTTS_LISTEN and closes the plain listener again', async (certs, scope) => {
  const squatter = net.createServer();
  scope.defer(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', () => resolve()));
  const taken = (squatter.address() as net.AddressInfo).port;
  const outcome = await createBroker({ port: 0, tls: serverTls(certs, { port: taken }) }).then(
    async (broker) => { await broker.close(); return 'started'; },
    (err: NodeJS.ErrnoException) => `${err.code ?? ''} ${err.message}`,
  );
  assert.match(outcome, /^EDGEFED_ERR_MQTTS_LISTEN EDGEFED_ERR_MQTTS_LISTEN: .*--mqtts-port/);
});

test.run();
