/**
 * The agent's own TCP/TLS transport (agent/transport.ts), which replaces
 * mqtt.connect() for mqtt:// and mqtts:// to save memory: credentials from
 * the URL, TLS with a private CA, and refusal of an unverified broker.
 * The TLS cases need the openssl binary to make a throwaway certificate.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Aedes, type AedesOptions } from 'aedes';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent } from '../agent/index.js';
import { silentLogger } from '../lib/log.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';
import { capturingLogger, type LogLine } from './helpers/logs.js';

type Listen = (handle: (socket: net.Socket) => void) => net.Server;

async function startBroker(scope: Scope, listen: Listen, opts: AedesOptions = {}): Promise<number> {
  const broker = await Aedes.createBroker(opts);
  const server = listen((socket) => broker.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scope.defer(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

/** A self-signed certificate for localhost/127.0.0.1, or undefined without openssl. */
function makeCertificate(): { key: string; cert: string } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const plain: Listen = (handle) => net.createServer(handle);
const transport = suite('agent transport');

/** A broker that accepts everyone and records the credentials each CONNECT carried. */
async function credentialRecorder(scope: Parameters<typeof startBroker>[0]) {
  const seen: Array<[string | undefined, string | undefined]> = [];
  const port = await startBroker(scope, plain, {
    authenticate: (_client, username, password, done) => {
      seen.push([username, password?.toString()]);
      done(null, true);
    },
  });
  return { seen, port };
}

transport('mqtt:// takes username and password from the URL (percent-decoded)', bounded(async (scope) => {
  const { seen, port } = await credentialRecorder(scope);
  const agent = await startAgent({
    nodeId: 'n1', capabilities: ['c'], brokerUrl: `mqtt://edge:s%3Acret@127.0.0.1:${port}`, logger: silentLogger,
  });
  scope.defer(() => agent.stop());
  await waitFor(() => agent.connected, { label: 'connected' });
  assert.equal(seen, [['edge', 's:cret']]);
}));

transport('explicit username/password options win over the URL', bounded(async (scope) => {
  const { seen, port } = await credentialRecorder(scope);
  const agent = await startAgent({
    nodeId: 'n1', capabilities: ['c'], brokerUrl: `mqtt://url-user:url-pass@127.0.0.1:${port}`,
    username: 'n1', password: 'a.jwt.token', logger: silentLogger,
  });
  scope.defer(() => agent.stop());
  await waitFor(() => agent.connected, { label: 'connected' });
  assert.equal(seen, [['n1', 'a.jwt.token']]);
}));

const certificate = makeCertificate();
if (certificate) {
  const secure: Listen = (handle) => tls.createServer({ key: certificate.key, cert: certificate.cert }, handle);

  transport('mqtts:// verifies the broker against the given CA and connects', bounded(async (scope) => {
    const port = await startBroker(scope, secure);
    const agent = await startAgent({
      nodeId: 'n1', capabilities: ['c'], brokerUrl: `mqtts://localhost:${port}`, mqtt: { ca: certificate.cert }, logger: silentLogger,
    });
    scope.defer(() => agent.stop());
    await waitFor(() => agent.connected, { label: 'connected over TLS' });
  }));

  transport('mqtts:// refuses a broker whose certificate it cannot verify', bounded(async (scope) => {
    const port = await startBroker(scope, secure);
    const logs: LogLine[] = [];
    const agent = await startAgent({
      nodeId: 'n1', capabilities: ['c'], brokerUrl: `mqtts://localhost:${port}`, reconnectMinMs: 50, reconnectMaxMs: 100,
      logger: capturingLogger(logs),
    });
    scope.defer(() => agent.stop());
    const refused = () => logs.filter((l) => l.msg === 'broker connection error' && /self[- ]signed/i.test(String(l.err))).length;
    await waitFor(() => refused() >= 1, { label: 'TLS error logged' });
    // The retry after it (50-100 ms later) fails the same way: the agent never got in.
    await waitFor(() => refused() >= 2, { label: 'TLS error logged again' });
    assert.not.ok(agent.connected);
  }));
} else {
  console.warn('agent-transport: openssl not found, TLS cases skipped');
}

transport.run();
