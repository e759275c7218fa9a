/**
 * The TLS surface of the CLI as a user meets it: `edgefed certs dev` in a
 * child process, `edgefed start` refusing bad TLS files, and a real
 * `edgefed agent --ca --cert --key` joining a `start --tls-ca --no-plain` hub.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runAgentCommand } from '../cli/agent-command.js';
import { spawnHub, stopGracefully, type HubProcess } from './helpers/process.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';
import { httpsGet } from './helpers/tls.js';
import { CLI_ARGS } from './helpers/cli.js';


interface Run { code: number | null; stdout: string; stderr: string }

/** `edgefed ARGS` to completion in a child process, bounded. */
function cli(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI_ARGS, ...args], { env, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function openssl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: 10_000 }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}: ${stderr}`)) : resolve(stdout)));
  });
}

async function tempDir(scope: Scope, prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function mode(file: string): Promise<number> {
  return (await fs.stat(file)).mode & 0o777;
}

const certs = suite('edgefed certs dev');

certs('writes the CA, server and client files; keys 0600; the server certificate names localhost, 127.0.0.1 and ::1', bounded(async (scope) => {
  const out = path.join(await tempDir(scope, 'edgefed-certs-'), 'nested', 'certs');
  const run = await cli(['certs', 'dev', '--out', out, '--days', '7']);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /--tls-cert .*server\.pem --tls-key .*server-key\.pem/);
  assert.match(run.stdout, /mosquitto_sub --cafile .*ca\.pem -h localhost -p 8883/);
  assert.equal((await fs.readdir(out)).sort(), ['ca-key.pem', 'ca.pem', 'client-key.pem', 'client.pem', 'server-key.pem', 'server.pem']);
  for (const key of ['ca-key.pem', 'server-key.pem', 'client-key.pem']) assert.is(await mode(path.join(out, key)), 0o600, key);
  for (const cert of ['ca.pem', 'server.pem', 'client.pem']) assert.is(await mode(path.join(out, cert)), 0o644, cert);
  const text = await openssl(['x509', '-noout', '-text', '-in', path.join(out, 'server.pem')]);
  assert.match(text, /DNS:localhost/);
  assert.match(text, /IP Address:127\.0\.0\.1/);
  assert.match(text, /IP Address:0:0:0:0:0:0:0:1/);
  assert.match(text, /TLS Web Server Authentication/);
  const verified = await openssl(['verify', '-CAfile', path.join(out, 'ca.pem'), path.join(out, 'server.pem'), path.join(out, 'client.pem')]);
  assert.match(verified, /server\.pem: OK/);
  assert.match(verified, /client\.pem: OK/);
}, { timeoutMs: 20_000, label: 'certs dev' }));

certs('refuses to overwrite an earlier run unless --force', bounded(async (scope) => {
  const out = await tempDir(scope, 'edgefed-certs-');
  assert.is((await cli(['certs', 'dev', '--out', out])).code, 0);
  const before = await fs.readFile(path.join(out, 'ca.pem'), 'utf8');
  const again = await cli(['certs', 'dev', '--out', out]);
  assert.is(again.code, 1);
  assert.match(again.stderr, /already holds ca\.pem.*--force/);
  assert.is(await fs.readFile(path.join(out, 'ca.pem'), 'utf8'), before, 'untouched');
  assert.is((await cli(['certs', 'dev', '--out', out, '--force'])).code, 0);
  assert.is.not(await fs.readFile(path.join(out, 'ca.pem'), 'utf8'), before, 'replaced');
  assert.equal((await fs.readdir(out)).filter((f) => f.startsWith('.')), [], 'no work directory left behind');
}, { timeoutMs: 30_000, label: 'certs dev --force' }));

certs('without openssl on PATH: exit 1 saying how to install it', bounded(async (scope) => {
  const out = await tempDir(scope, 'edgefed-certs-');
  const emptyPath = await tempDir(scope, 'edgefed-nopath-');
  const run = await cli(['certs', 'dev', '--out', out], { ...process.env, PATH: emptyPath });
  assert.is(run.code, 1, run.stderr);
  assert.match(run.stderr, /openssl not found on PATH.*apt-get install openssl/);
}, { timeoutMs: 15_000, label: 'certs dev without openssl' }));

certs('usage errors exit 2', bounded(async () => {
  const [noSub, noOut] = await Promise.all([cli(['certs', '--out', 'x']), cli(['certs', 'dev'])]);
  assert.is(noSub.code, 2);
  assert.match(noSub.stderr, /the only subcommand is "dev"/);
  assert.is(noOut.code, 2);
  assert.match(noOut.stderr, /--out DIR is required/);
}, { timeoutMs: 15_000, label: 'certs usage' }));

certs.run();

// ---------------------------------------------------------------------------

const start = suite('edgefed start and agent with TLS');

/** Dev certificates made by the real command, for the processes below. */
async function certDir(scope: Scope): Promise<(name: string) => string> {
  const dir = await tempDir(scope, 'edgefed-tls-cli-');
  const run = await cli(['certs', 'dev', '--out', dir]);
  assert.is(run.code, 0, run.stderr);
  return (name) => path.join(dir, name);
}

start('bad TLS files stop start before it listens, naming the flag', bounded(async (scope) => {
  const file = await certDir(scope);
  const data = await tempDir(scope, 'edgefed-tls-data-');
  const base = ['start', '--data-dir', data, '--mqtt-port', '0', '--http-port', '0', '--mqtts-port', '0'];
  const [missing, swapped, mismatch, noPlain] = await Promise.all([
    cli([...base, '--tls-cert', file('server.pem'), '--tls-key', file('nope.pem')]),
    cli([...base, '--tls-cert', file('server-key.pem'), '--tls-key', file('server.pem')]),
    cli([...base, '--tls-cert', file('server.pem'), '--tls-key', file('client-key.pem')]),
    cli([...base, '--no-plain']),
  ]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /EDGEFED_ERR_TLS_FILE: --tls-key .*nope\.pem: no such file/);
  assert.is(swapped.code, 2);
  assert.match(swapped.stderr, /EDGEFED_ERR_TLS: --tls-cert .*server-key\.pem is not a PEM certificate/);
  assert.is(mismatch.code, 2);
  assert.match(mismatch.stderr, /EDGEFED_ERR_TLS: --tls-key .*client-key\.pem does not match the certificate/);
  assert.is(noPlain.code, 2);
  assert.match(noPlain.stderr, /--no-plain .*--tls-cert/);
}, { timeoutMs: 30_000, label: 'start with bad TLS files' }));

start('agent --ca/--cert/--key joins a hub started with --tls-ca --no-plain', bounded(async (scope) => {
  const file = await certDir(scope);
  const data = await tempDir(scope, 'edgefed-tls-data-');
  const hub: HubProcess = await spawnHub(['--data-dir', data, '--tls-cert', file('server.pem'), '--tls-key', file('server-key.pem'),
    '--tls-ca', file('ca.pem'), '--mqtts-port', '0', '--no-plain']);
  scope.defer(() => stopGracefully(hub).catch(() => hub.child.kill('SIGKILL')));
  const ready = readyLine(hub);
  assert.is(ready.mqtt_url, undefined, 'no plain listener');
  assert.match(ready.http_url, /^https:/);
  const mqtts = new URL(ready.mqtts_url ?? '');
  assert.is(mqtts.protocol, 'mqtts:');

  const agent = spawnAgent(['--id', 'tls-agent', '--capabilities', 'monitoring', '--broker', `mqtts://localhost:${mqtts.port}`,
    '--ca', file('ca.pem'), '--cert', file('client.pem'), '--key', file('client-key.pem'), '--spool-dir', path.join(data, 'spool')]);
  scope.defer(() => stopChild(agent.child));
  const clientTls = { ca: await fs.readFile(file('ca.pem')), cert: await fs.readFile(file('client.pem')), key: await fs.readFile(file('client-key.pem')) };
  const node = await waitFor(async () => {
    const res = await httpsGet(`${ready.http_url}/federation/nodes/tls-agent`, clientTls);
    return res.status === 200 ? (JSON.parse(res.body) as { status: string }) : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100, label: `agent registered over mutual TLS; agent said: ${agent.stderr()}` });
  assert.is(node.status, 'active');
}, { timeoutMs: 40_000, label: 'agent over mutual TLS' }));

start('edgefed nodes against an HTTPS hub: an untrusted certificate is named as such; NODE_EXTRA_CA_CERTS makes it work', bounded(async (scope) => {
  const file = await certDir(scope);
  const data = await tempDir(scope, 'edgefed-tls-data-');
  const hub: HubProcess = await spawnHub(['--data-dir', data, '--tls-cert', file('server.pem'), '--tls-key', file('server-key.pem'), '--mqtts-port', '0']);
  scope.defer(() => stopGracefully(hub).catch(() => hub.child.kill('SIGKILL')));
  const url = readyLine(hub).http_url.replace('127.0.0.1', 'localhost');
  const untrusted = await cli(['nodes', '--hub', url]);
  assert.is(untrusted.code, 1);
  assert.match(untrusted.stderr, /TLS certificate is not trusted .*NODE_EXTRA_CA_CERTS/);
  const trusted = await cli(['nodes', '--hub', url], { ...process.env, NODE_EXTRA_CA_CERTS: file('ca.pem') });
  assert.is(trusted.code, 0, trusted.stderr);
  assert.match(trusted.stdout, /No nodes match/);
}, { timeoutMs: 40_000, label: 'CLI against HTTPS' }));

start.run();

// ---------------------------------------------------------------------------

const agentFlags = suite('edgefed agent TLS flags');

agentFlags('--cert without --key, TLS files with an mqtt:// broker, and a missing --ca exit 2 naming the flag', async () => {
  const base = ['--id', 'n1', '--capabilities', 'a'];
  const cases: Array<[string[], RegExp]> = [
    [[...base, '--broker', 'mqtts://localhost:8883', '--cert', 'c.pem'], /--key is missing: a client certificate needs both --cert and --key/],
    [[...base, '--broker', 'mqtt://localhost:1883', '--ca', 'ca.pem'], /--ca\/--cert\/--key need a TLS broker URL \(mqtts:\/\/host:8883\)/],
    [[...base, '--broker', 'mqtts://localhost:8883', '--ca', '/no/such/ca.pem'], /EDGEFED_ERR_TLS_FILE: --ca \/no\/such\/ca\.pem: no such file/],
  ];
  for (const [argv, message] of cases) {
    const { code, err } = await withTimeout(runCaptured(argv), 5000, argv.join(' '));
    assert.is(code, 2, argv.join(' '));
    assert.match(err, message);
    assert.match(err, /edgefed agent --help/);
  }
});

agentFlags.run();

// ---------------------------------------------------------------------------

interface ReadyLine { mqtt_url?: string; mqtts_url?: string; http_url: string }

function readyLine(hub: HubProcess): ReadyLine {
  for (const line of hub.lines) {
    try {
      const rec = JSON.parse(line) as ReadyLine & { msg?: string };
      if (rec.msg === 'edgefed ready') return rec;
    } catch { /* stderr chunk or not JSON */ }
  }
  throw new Error(`no "edgefed ready" line in:\n${hub.lines.join('\n')}`);
}

function spawnAgent(args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [...CLI_ARGS, 'agent', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  return { child, stderr: () => stderr };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await withTimeout(exited, 5000, 'agent exit').catch(() => child.kill('SIGKILL'));
}

/** runAgentCommand in-process with stderr captured (flag errors return before anything connects). */
async function runCaptured(argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const realErr = process.stderr.write;
  process.stderr.write = ((chunk: string) => { err += chunk; return true; }) as typeof process.stderr.write;
  try {
    return { code: await runAgentCommand(argv, {}), err };
  } finally {
    process.stderr.write = realErr;
  }
}
