/**
 * Issue 12 §5: `edgefed certs dev --host NAME[,NAME...]` names more hosts in
 * the server certificate, so the README's TLS example (an agent on another
 * machine reaching `hub.local`) verifies; a bad name is refused.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI_ARGS } from './helpers/cli.js';
import { bounded } from './helpers/scope.js';

const run = promisify(execFile);

test('--host adds DNS names and IP addresses to the server certificate; a bad one is refused', bounded(async (scope) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-certs-host-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  await run(process.execPath, [...CLI_ARGS, 'certs', 'dev', '--out', dir, '--host', 'hub.local,10.0.0.5', '--host', 'gw-2.lan'], { timeout: 20_000 });
  const cert = new X509Certificate(await fs.readFile(path.join(dir, 'server.pem')));
  assert.ok(cert.checkHost('hub.local'), 'hub.local');
  assert.ok(cert.checkHost('gw-2.lan'), 'gw-2.lan');
  assert.ok(cert.checkIP('10.0.0.5'), '10.0.0.5');
  assert.ok(cert.checkHost('localhost') && cert.checkIP('127.0.0.1'), 'the loopback names stay');
  const bad = await run(process.execPath, [...CLI_ARGS, 'certs', 'dev', '--out', path.join(dir, 'x'), '--host', 'not a name'], { timeout: 20_000 })
    .then(() => ({ code: 0, err: '' }), (e: { code: number; stderr: string }) => ({ code: e.code, err: e.stderr }));
  assert.equal([bad.code, bad.err], [2, 'edgefed certs dev: --host "not a name" is neither a DNS name nor an IP address\n']);
}, { timeoutMs: 30_000 }));

test.run();
