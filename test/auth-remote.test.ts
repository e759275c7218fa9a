/**
 * Keys that change under a running verifier: a remote JWKS (served here by a
 * local HTTP server, as Vault serves /v1/identity/oidc/.well-known/keys) and
 * the hub's jwks.json rotated by another process.
 */
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createVerifier, issueToken, loadOrCreateSigningKey, rotateSigningKey, TokenError, type SigningKey } from '../auth/index.js';
import { bounded, type Scope } from './helpers/scope.js';

const test = suite('auth: key rotation seen by a running verifier');

const VAULT_PATH = '/v1/identity/oidc/.well-known/keys';

interface JwksServer { url: string; keys: JSONWebKeySet; fetches: number }

/** Serves `server.keys` at Vault's JWKS path on 127.0.0.1, counting fetches. */
async function serveJwks(scope: Scope, keys: JSONWebKeySet): Promise<JwksServer> {
  const state = { url: '', keys, fetches: 0 };
  const server = http.createServer((req, res) => {
    if (req.url !== VAULT_PATH) { res.writeHead(404).end(); return; }
    state.fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(state.keys));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scope.defer(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${VAULT_PATH}`;
  return state;
}

async function tempDataDir(scope: Scope): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edgefed-jwks-'));
  scope.defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const tokenOf = (key: SigningKey, subject = 'edge-001') => issueToken({ subject, role: 'agent', caps: ['monitoring'], ttlSeconds: 600 }, key);

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (err) {
    if (err instanceof TokenError) return err.code;
    throw err;
  }
}

test('a remote JWKS verifies, is fetched once, and a rotated key is picked up by kid', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const first = await loadOrCreateSigningKey(dataDir);
  const jwks = await serveJwks(scope, first.jwks);
  const v = await createVerifier({ jwksUrl: jwks.url, jwksCooldownMs: 0, identityCacheSize: 0 });
  assert.is((await v.verify(await tokenOf(first))).kid, first.kid);
  assert.is((await v.verify(await tokenOf(first, 'edge-002'))).subject, 'edge-002');
  assert.is(jwks.fetches, 1, 'keys are cached between tokens');

  const second = await rotateSigningKey(dataDir);
  jwks.keys = second.jwks;
  assert.is((await v.verify(await tokenOf(second))).kid, second.kid, 'an unknown kid makes the verifier fetch again');
  assert.is(jwks.fetches, 2);
  assert.is((await v.verify(await tokenOf(first))).kid, first.kid, 'the old key is still served, so its tokens still verify');

  // Retiring a key at the issuer takes effect when the verifier fetches again (jwksCacheMaxAgeMs).
  jwks.keys = { keys: [second.current] };
  assert.is(await codeOf(v.verify(await tokenOf(first, 'edge-003'))), 'accepted', 'keys are not fetched per token');
  assert.is(jwks.fetches, 2);
}));

test('a retired key is refused once the remote set is fetched again', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const first = await loadOrCreateSigningKey(dataDir);
  const second = await rotateSigningKey(dataDir);
  const jwks = await serveJwks(scope, { keys: [second.current] });
  const v = await createVerifier({ jwksUrl: jwks.url, jwksCooldownMs: 0 });
  assert.is(await codeOf(v.verify(await tokenOf(first))), 'unknown_key');
  assert.is(await codeOf(v.verify(await tokenOf(second))), 'accepted');
}));

test('persisted identities over a remote JWKS: admitted while the kid is served, refused once it is not, kept while the keys are down', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const first = await loadOrCreateSigningKey(dataDir);
  const second = await rotateSigningKey(dataDir);
  const jwks = await serveJwks(scope, second.jwks);
  const identityStore = path.join(dataDir, 'verified-tokens.json');
  const options = { jwksUrl: jwks.url, jwksCooldownMs: 0, identityStore };
  const [old, current] = [await tokenOf(first), await tokenOf(second, 'edge-002')];
  const v1 = await createVerifier(options);
  scope.defer(() => v1.close());
  assert.equal([(await v1.verify(old)).kid, (await v1.verify(current)).kid], [first.kid, second.kid]);
  await v1.close();

  const online = jwks.url;
  const down = await createVerifier({ ...options, jwksUrl: online.replace(VAULT_PATH, '/missing'), jwksTimeoutMs: 1000 });
  scope.defer(() => down.close());
  assert.is(down.persistedIdentities, 2, 'a remote set is not fetched at start');
  assert.is(await codeOf(down.verify(old)), 'keys_unavailable', 'no key set, no admission');
  await down.close();
  assert.is((await createVerifier(options)).persistedIdentities, 2, 'entries survive an outage of the keys');

  jwks.keys = { keys: [second.current] }; // the first key retired at the issuer
  const v2 = await createVerifier(options);
  scope.defer(() => v2.close());
  assert.is(await codeOf(v2.verify(old)), 'unknown_key');
  assert.is(await codeOf(v2.verify(current)), 'accepted');
  assert.is(v2.persistedIdentities, 1);
}));

test('an unreachable JWKS URL refuses tokens without crashing, and recovers', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const key = await loadOrCreateSigningKey(dataDir);
  const jwks = await serveJwks(scope, key.jwks);
  const v = await createVerifier({ jwksUrl: jwks.url.replace(VAULT_PATH, '/missing'), jwksCooldownMs: 0, jwksTimeoutMs: 1000 });
  const token = await tokenOf(key);
  try {
    await v.verify(token);
    assert.unreachable('verified without keys');
  } catch (err) {
    assert.instance(err, TokenError);
    assert.is((err as TokenError).code, 'keys_unavailable');
    assert.match((err as TokenError).message, /verification keys unavailable from http:\/\/127\.0\.0\.1/);
  }
  const good = await createVerifier({ jwksUrl: jwks.url, jwksCooldownMs: 0 });
  assert.is((await good.verify(token)).subject, 'edge-001');
}));

test('a jwks.json rotated by another process is read again for the new kid', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const first = await loadOrCreateSigningKey(dataDir);
  const v = await createVerifier({ jwksFile: first.jwksFile, jwksCooldownMs: 0 });
  assert.is((await v.verify(await tokenOf(first))).kid, first.kid);
  const second = await rotateSigningKey(dataDir); // as `edgefed token rotate` would
  assert.is((await v.verify(await tokenOf(second))).kid, second.kid);
  assert.is((await v.verify(await tokenOf(first, 'edge-002'))).kid, first.kid);
}));

test('within the cooldown an unknown kid is refused without reading the file again', bounded(async (scope) => {
  const dataDir = await tempDataDir(scope);
  const first = await loadOrCreateSigningKey(dataDir);
  const v = await createVerifier({ jwksFile: first.jwksFile, jwksCooldownMs: 60_000 });
  const second = await rotateSigningKey(path.join(dataDir, 'other')); // a key this verifier never trusted
  assert.is(await codeOf(v.verify(await tokenOf(second))), 'unknown_key', 'the first unknown kid reads the file at once');
  const third = await rotateSigningKey(dataDir);
  assert.is(await codeOf(v.verify(await tokenOf(third))), 'unknown_key', 'cooling down');
  assert.is(await codeOf(v.verify(await tokenOf(first))), 'accepted');
}));

test('the verifier wants exactly one key source and a usable URL', bounded(async () => {
  for (const options of [{}, { jwks: { keys: [] }, jwksUrl: 'https://vault:8200/x' }, { jwksUrl: 'not a url' }, { jwksUrl: 'file:///etc/passwd' }]) {
    try {
      await createVerifier(options);
      assert.unreachable(JSON.stringify(options));
    } catch (err) {
      assert.match((err as Error).message, /EDGEFED_ERR_AUTH_KEYS/);
    }
  }
}));

test.run();
