/** `edgefed token` as a user runs it: a child process whose stdout is the token alone. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createVerifier, JWKS_FILE, keysDir } from '../auth/index.js';
import { bounded, type Scope } from './helpers/scope.js';
import { CLI_ARGS } from './helpers/cli.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs `edgefed ...` through tsx; the child is killed at the end of the test if still running. */
function edgefed(scope: Scope, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EDGEFED_')));
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], { cwd: ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  scope.defer(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

async function tempDataDir(scope: Scope): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edgefed-token-cli-'));
  scope.defer(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'data');
}

const test = suite('auth: edgefed token');

test('token issue prints one line, the token, which verifies with the data dir\'s keys', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const run = await edgefed(scope, ['token', 'issue', '--node', 'edge-001', '--capabilities', 'monitoring,basic-actions', '--ttl', '1h', '--data-dir', dataDir, '--issuer', 'edgefed-hub', '--init-key']);
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'the token alone on one line');
  assert.match(run.stderr, /made a new signing key/);
  const verifier = await createVerifier({ jwksFile: path.join(keysDir(dataDir), JWKS_FILE), issuer: 'edgefed-hub' });
  const identity = await verifier.verify(run.stdout.trim());
  assert.equal([identity.role, identity.subject, identity.caps], ['agent', 'edge-001', ['monitoring', 'basic-actions']]);
  assert.ok(Math.abs(identity.expiresAt - (Date.now() / 1000 + 3600)) < 10);

  const op = await edgefed(scope, ['token', 'issue', '--role', 'operator', '--scope', 'wpk:write', '--data-dir', dataDir]);
  assert.is(op.code, 0, op.stderr);
  assert.match(op.stderr, /^edgefed token: signed with key [\w-]+ in .*keys\n$/, 'which key directory it used');
  const opIdentity = await (await createVerifier({ jwksFile: path.join(keysDir(dataDir), JWKS_FILE) })).verify(op.stdout.trim());
  assert.equal([opIdentity.role, opIdentity.subject, opIdentity.scopes], ['operator', 'operator', ['wpk:write']]);
}, { timeoutMs: 20_000 }));

test('an agent token without --capabilities exits 2 with what to add, and makes no key', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const run = await edgefed(scope, ['token', 'issue', '--node', 'edge-001', '--data-dir', dataDir]);
  assert.is(run.code, 2);
  assert.is(run.stdout, '');
  assert.match(run.stderr, /--capabilities is required for an agent token \(e\.g\. --capabilities monitoring/);
  const noNode = await edgefed(scope, ['token', 'issue', '--capabilities', 'monitoring', '--data-dir', dataDir]);
  assert.is(noNode.code, 2);
  assert.match(noNode.stderr, /--node is required/);
  const badTtl = await edgefed(scope, ['token', 'issue', '--role', 'hub', '--ttl', '3600', '--data-dir', dataDir]);
  assert.is(badTtl.code, 2);
  assert.match(badTtl.stderr, /--ttl needs a unit/);
  assert.not.ok(existsSync(dataDir), 'refused before any key was made');
}, { timeoutMs: 20_000 }));

test('token issue without a key refuses, says where it looked, and makes nothing', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const run = await edgefed(scope, ['token', 'issue', '--role', 'operator', '--data-dir', dataDir]);
  assert.is(run.code, 1);
  assert.is(run.stdout, '');
  assert.match(run.stderr, /^edgefed token issue: no signing key in .*keys; a new one would sign tokens the hub refuses\. Give the hub's --data-dir .*or --init-key/);
  assert.not.ok(existsSync(dataDir), 'no key and no directory were made');
}, { timeoutMs: 20_000 }));

test('token rotate prints the new kid; tokens issued before still verify', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const before = await edgefed(scope, ['token', 'issue', '--role', 'hub', '--data-dir', dataDir, '--init-key']);
  const rotate = await edgefed(scope, ['token', 'rotate', '--data-dir', dataDir]);
  assert.is(rotate.code, 0, rotate.stderr);
  assert.match(rotate.stdout, /^[\w-]{43}\n$/);
  const after = await edgefed(scope, ['token', 'issue', '--role', 'hub'], { EDGEFED_DATA_DIR: dataDir });
  const verifier = await createVerifier({ jwksFile: path.join(keysDir(dataDir), JWKS_FILE) });
  assert.is.not((await verifier.verify(before.stdout.trim())).kid, rotate.stdout.trim());
  assert.is((await verifier.verify(after.stdout.trim())).kid, rotate.stdout.trim());
}, { timeoutMs: 20_000 }));

test.run();
