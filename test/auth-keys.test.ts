/** The hub's signing key in its data dir: made once with tight modes, reused, rotated without breaking issued tokens. */
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createVerifier, issueToken, JWKS_FILE, keysDir, loadOrCreateSigningKey, PRIVATE_KEY_FILE, rotateSigningKey } from '../auth/index.js';
import { bounded, type Scope } from './helpers/scope.js';

const test = suite('auth: signing keys');

async function tempDataDir(scope: Scope): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edgefed-keys-'));
  scope.defer(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'data'); // not there yet: the first start makes it
}

const modeOf = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;
const agentToken = (key: Awaited<ReturnType<typeof loadOrCreateSigningKey>>) =>
  issueToken({ subject: 'edge-001', role: 'agent', caps: ['monitoring'], ttlSeconds: 600 }, key);

test('the first call makes keys/ 0700, signing-key.pem 0600 and a public jwks.json', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const key = await loadOrCreateSigningKey(dataDir);
  assert.ok(key.created);
  assert.is(await modeOf(keysDir(dataDir)), 0o700);
  assert.is(await modeOf(path.join(keysDir(dataDir), PRIVATE_KEY_FILE)), 0o600);
  assert.match(await readFile(path.join(keysDir(dataDir), PRIVATE_KEY_FILE), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
  const jwks = JSON.parse(await readFile(key.jwksFile, 'utf8')) as { keys: Record<string, unknown>[] };
  assert.equal(Object.keys(jwks.keys[0]!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
  assert.equal(jwks.keys[0], { kty: 'OKP', crv: 'Ed25519', x: key.current.x, kid: key.kid, alg: 'EdDSA', use: 'sig' });
  assert.match(key.kid, /^[A-Za-z0-9_-]{43}$/, 'an RFC 7638 SHA-256 thumbprint');
}));

test('a later call loads the same key and tokens of the first still verify', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const first = await loadOrCreateSigningKey(dataDir);
  const token = await agentToken(first);
  const pem = await readFile(path.join(keysDir(dataDir), PRIVATE_KEY_FILE), 'utf8');
  const again = await loadOrCreateSigningKey(dataDir);
  assert.not.ok(again.created);
  assert.is(again.kid, first.kid);
  assert.is(await readFile(path.join(keysDir(dataDir), PRIVATE_KEY_FILE), 'utf8'), pem, 'the private key is not rewritten');
  const verifier = await createVerifier({ jwks: again.jwks });
  assert.is((await verifier.verify(token)).kid, first.kid);
}));

test('rotation signs with a new key and keeps the old public keys, so old tokens verify', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const first = await loadOrCreateSigningKey(dataDir);
  const oldToken = await agentToken(first);
  const second = await rotateSigningKey(dataDir);
  const third = await rotateSigningKey(dataDir);
  assert.is.not(second.kid, first.kid);
  assert.equal(third.jwks.keys.map((k) => k.kid), [third.kid, second.kid, first.kid], 'current first, then older keys');
  assert.is((await loadOrCreateSigningKey(dataDir)).kid, third.kid, 'the rotated key is the current one from now on');
  assert.is(await modeOf(path.join(keysDir(dataDir), PRIVATE_KEY_FILE)), 0o600);
  const verifier = await createVerifier({ jwksFile: third.jwksFile });
  assert.is((await verifier.verify(oldToken)).kid, first.kid);
  assert.is((await verifier.verify(await agentToken(third))).kid, third.kid);
}));

test('a lost jwks.json is written again with the current key', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const key = await loadOrCreateSigningKey(dataDir);
  await rm(path.join(keysDir(dataDir), JWKS_FILE));
  const again = await loadOrCreateSigningKey(dataDir);
  assert.is(again.kid, key.kid);
  const jwks = JSON.parse(await readFile(key.jwksFile, 'utf8')) as { keys: { kid: string }[] };
  assert.equal(jwks.keys.map((k) => k.kid), [key.kid]);
}));

test('a private key readable by others is refused with the chmod to run', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  await loadOrCreateSigningKey(dataDir);
  await chmod(path.join(keysDir(dataDir), PRIVATE_KEY_FILE), 0o644);
  try {
    await loadOrCreateSigningKey(dataDir);
    assert.unreachable('loaded a world-readable key');
  } catch (err) {
    assert.match((err as Error).message, /EDGEFED_ERR_KEY_MODE.*chmod 600/);
  }
}));

test('a jwks.json holding a private key is refused', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const key = await loadOrCreateSigningKey(dataDir);
  await writeFile(key.jwksFile, JSON.stringify({ keys: [{ ...key.current, d: 'secret' }] }));
  try {
    await createVerifier({ jwksFile: key.jwksFile });
    assert.unreachable('trusted a set with a private key');
  } catch (err) {
    assert.match((err as Error).message, /EDGEFED_ERR_JWKS: .*private or secret key/);
  }
}));

test.run();
