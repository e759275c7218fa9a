/**
 * Token verification against a key set in memory: the round trip, every
 * refusal with its code, the claim rules and the identity cache.
 */
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { base64url, calculateJwkThumbprint, exportJWK, importPKCS8, SignJWT, type CryptoKey, type JSONWebKeySet, type JWTPayload } from 'jose';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createVerifier, issueToken, TokenError, type TokenRefusalCode, type TokenSigner, type VerifierOptions } from '../auth/index.js';
import { IdentityCache } from '../auth/identity-cache.js';
import { bounded } from './helpers/scope.js';

interface TestKey extends TokenSigner { jwks: JSONWebKeySet }

/** An Ed25519 key like the hub's, in memory (auth-keys.test.ts covers the files). */
async function makeKey(): Promise<TestKey> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, alg: 'EdDSA', privateKey: await importPKCS8(pem, 'EdDSA'), jwks: { keys: [{ ...jwk, kid, alg: 'EdDSA', use: 'sig' }] } };
}

const KEY = await makeKey();
const OTHER = await makeKey();
const nowS = () => Math.floor(Date.now() / 1000);

const agent = (extra: Partial<Parameters<typeof issueToken>[0]> = {}) =>
  issueToken({ subject: 'edge-001', role: 'agent', caps: ['monitoring'], ttlSeconds: 600, ...extra }, KEY);

/** A token with exactly these claims and header, for the cases issueToken refuses to make. */
function handMade(payload: JWTPayload, key: { privateKey: CryptoKey | Uint8Array; kid?: string } = KEY, alg = 'EdDSA'): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, ...(key.kid ? { kid: key.kid } : {}) }).sign(key.privateKey);
}

const verifier = (options: Omit<VerifierOptions, 'jwks'> = {}) => createVerifier({ jwks: KEY.jwks, ...options });

async function refusal(promise: Promise<unknown>): Promise<TokenError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TokenError) return err;
    throw err;
  }
  assert.unreachable('the token was accepted');
  throw new Error('unreachable');
}

async function assertRefused(token: string | Promise<string>, code: TokenRefusalCode, options: Omit<VerifierOptions, 'jwks'> = {}): Promise<void> {
  const text = await token;
  const err = await refusal((await verifier(options)).verify(text));
  assert.is(err.code, code, err.message);
  if (text.length > 8) assert.not.ok(err.message.includes(text), 'the message never holds the token');
}

const test = suite('auth: verify');

test('issue -> verify gives the identity of the claims', bounded(async () => {
  const v = await verifier({ issuer: 'edgefed-hub', audience: 'edgefed' });
  const token = await agent({ caps: ['monitoring', 'basic-actions'], scopes: ['x:y'], issuer: 'edgefed-hub', audience: 'edgefed' });
  const identity = await v.verify(token);
  assert.equal({ ...identity }, { role: 'agent', subject: 'edge-001', caps: ['monitoring', 'basic-actions'], scopes: ['x:y'], expiresAt: identity.expiresAt, acceptedUntil: identity.expiresAt + 30, kid: KEY.kid });
  assert.ok(Math.abs(identity.expiresAt - (nowS() + 600)) <= 2);
  const op = await v.verify(await issueToken({ role: 'operator', scopes: ['wpk:write'], ttlSeconds: 60, issuer: 'edgefed-hub', audience: 'edgefed' }, KEY));
  assert.equal({ role: op.role, subject: op.subject, caps: op.caps, scopes: op.scopes }, { role: 'operator', subject: 'operator', caps: [], scopes: ['wpk:write'] });
  const hub = await v.verify(await issueToken({ role: 'hub', ttlSeconds: 60, issuer: 'edgefed-hub', audience: 'edgefed' }, KEY));
  assert.is(hub.subject, 'hub');
}));

test('issueToken refuses what no verifier would accept', bounded(async () => {
  const cases: [Parameters<typeof issueToken>[0], RegExp][] = [
    [{ role: 'agent', subject: 'edge-001', ttlSeconds: 60 }, /EDGEFED_ERR_TOKEN_CAPS/],
    [{ role: 'agent', caps: ['m'], ttlSeconds: 60 }, /EDGEFED_ERR_TOKEN_SUBJECT/],
    [{ role: 'agent', subject: 'a/b', caps: ['m'], ttlSeconds: 60 }, /EDGEFED_ERR_TOKEN_SUBJECT/],
    [{ role: 'agent', subject: 'e', caps: ['#'], ttlSeconds: 60 }, /EDGEFED_ERR_TOKEN_CAPS/],
    [{ role: 'operator', caps: ['m'], ttlSeconds: 60 }, /EDGEFED_ERR_TOKEN_CAPS/],
    [{ role: 'operator', scopes: ['two words'], ttlSeconds: 60 }, /EDGEFED_ERR_TOKEN_SCOPE/],
    [{ role: 'operator', ttlSeconds: 0 }, /EDGEFED_ERR_TOKEN_TTL/],
    [{ role: 'admin' as 'hub', ttlSeconds: 60 }, /EDGEFED_ERR_TOKEN_ROLE/],
  ];
  for (const [options, message] of cases) {
    try {
      await issueToken(options, KEY);
      assert.unreachable(`issued ${JSON.stringify(options)}`);
    } catch (err) {
      assert.match((err as Error).message, message);
    }
  }
}));

test('expired and not-yet-valid tokens', bounded(async () => {
  await assertRefused(handMade({ role: 'hub', sub: 'hub', iat: nowS() - 7200, exp: nowS() - 3600 }), 'expired');
  await assertRefused(agent({ ttlSeconds: 60 }), 'expired', { now: () => Date.now() + 3_600_000 });
  await assertRefused(handMade({ role: 'hub', sub: 'hub', nbf: nowS() + 3600, exp: nowS() + 7200 }), 'not_yet_valid');
}));

test('issuer and audience are checked when configured, a missing claim included', bounded(async () => {
  await assertRefused(agent({ issuer: 'someone-else' }), 'wrong_issuer', { issuer: 'edgefed-hub' });
  await assertRefused(agent(), 'wrong_issuer', { issuer: 'edgefed-hub' });
  await assertRefused(agent({ audience: 'other' }), 'wrong_audience', { audience: 'edgefed' });
  await assertRefused(agent(), 'wrong_audience', { audience: 'edgefed' });
  const v = await verifier({ audience: ['edgefed', 'edgefed-api'] });
  assert.is((await v.verify(await agent({ audience: 'edgefed-api' }))).subject, 'edge-001');
}));

test('a tampered signature or payload, and a token of another key, are refused', bounded(async () => {
  const [h, p, s] = (await agent()).split('.') as [string, string, string];
  const i = 20; // inside the signature: its last character holds padding bits only in part
  const flipped = `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
  await assertRefused(`${h}.${p}.${flipped}`, 'bad_signature');
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(p))) as JWTPayload;
  const widened = base64url.encode(JSON.stringify({ ...claims, caps: ['monitoring', 'everything'] }));
  await assertRefused(`${h}.${widened}.${s}`, 'bad_signature');
  await assertRefused(issueToken({ subject: 'edge-001', role: 'agent', caps: ['m'], ttlSeconds: 60 }, OTHER), 'unknown_key');
  // Another key claiming our kid: the kid picks our key, whose signature check fails.
  await assertRefused(issueToken({ subject: 'edge-001', role: 'agent', caps: ['m'], ttlSeconds: 60 }, { ...OTHER, kid: KEY.kid }), 'bad_signature');
}));

test('alg none, HS256 and algorithms not configured are refused before any key lookup', bounded(async () => {
  const enc = (o: object) => base64url.encode(JSON.stringify(o));
  const payload = enc({ role: 'hub', sub: 'hub', exp: nowS() + 600 });
  await assertRefused(`${enc({ alg: 'none' })}.${payload}.`, 'bad_algorithm');
  await assertRefused(`${enc({ alg: 'none', kid: KEY.kid })}.${payload}.`, 'bad_algorithm');
  await assertRefused(`${enc({ alg: 'NONE' })}.${payload}.`, 'bad_algorithm');
  const secret = new TextEncoder().encode('a shared secret that is long enough');
  await assertRefused(handMade({ role: 'hub', sub: 'hub', exp: nowS() + 600 }, { privateKey: secret, kid: KEY.kid }, 'HS256'), 'bad_algorithm');
  await assertRefused(agent(), 'bad_algorithm', { algorithms: ['ES256'] });
}));

test('a verifier cannot be configured to accept none or HMAC', bounded(async () => {
  for (const algorithms of [['none'], ['EdDSA', 'HS256'], []]) {
    try {
      await verifier({ algorithms });
      assert.unreachable(`accepted algorithms ${algorithms.join(',')}`);
    } catch (err) {
      assert.match((err as Error).message, /EDGEFED_ERR_AUTH_ALGORITHMS/);
    }
  }
}));

test('garbage is malformed', bounded(async () => {
  for (const garbage of ['', 'not a token', 'a.b.c', '...', 'eyJhbGciOiJFZERTQSJ9.!!!.x', 'x'.repeat(20_000), 'a.b.c.d.e']) {
    await assertRefused(garbage, 'malformed');
  }
}));

test('claims that make no sense are refused even when signed', bounded(async () => {
  const exp = nowS() + 600;
  await assertRefused(handMade({ role: 'agent', sub: 'edge-001', exp }), 'bad_claims'); // no caps
  await assertRefused(handMade({ role: 'agent', sub: 'edge-001', caps: [], exp }), 'bad_claims');
  await assertRefused(handMade({ role: 'agent', sub: 'edge-001', caps: 'monitoring', exp }), 'bad_claims');
  await assertRefused(handMade({ role: 'agent', sub: 'edge/001', caps: ['m'], exp }), 'bad_claims');
  await assertRefused(handMade({ role: 'agent', sub: 'edge-001', caps: ['m/#'], exp }), 'bad_claims');
  await assertRefused(handMade({ role: 'admin', sub: 'x', exp }), 'bad_claims');
  await assertRefused(handMade({ sub: 'x', exp }), 'bad_claims');
  await assertRefused(handMade({ role: 'operator', exp }), 'bad_claims'); // no sub
  await assertRefused(handMade({ role: 'operator', sub: 'op' }), 'bad_claims'); // never expires
  await assertRefused(handMade({ role: 'operator', sub: 'op', scope: ['wpk:write'], exp }), 'bad_claims');
}));

test('verified identities are cached, bounded, and never past exp', bounded(async () => {
  let clock = Date.now();
  const v = await verifier({ now: () => clock, clockToleranceS: 0, identityCacheSize: 2 });
  const token = await agent({ ttlSeconds: 60 });
  const first = await v.verify(token);
  assert.is(await v.verify(token), first, 'the second verify is a cache hit');
  assert.ok(Object.isFrozen(first), 'a cached identity cannot be changed by a caller');
  await v.verify(await agent({ subject: 'edge-002' }));
  await v.verify(await agent({ subject: 'edge-003' }));
  assert.is(v.cachedIdentities, 2, 'bounded');
  await v.verify(token);
  clock = first.expiresAt * 1000 + 1;
  assert.is((await refusal(v.verify(token))).code, 'expired', 'the cache does not outlive exp');
}));

test('identity cache: least recently used goes first; maxAge caps an entry below exp', () => {
  const id = (subject: string, expiresAt = 10_000) => ({ role: 'agent' as const, subject, caps: ['m'], scopes: [], expiresAt, acceptedUntil: expiresAt, kid: undefined });
  const cache = new IdentityCache(2, 5_000);
  cache.set('a', id('a'), 0);
  cache.set('b', id('b'), 0);
  assert.ok(cache.get('a', 1));
  cache.set('c', id('c'), 1);
  assert.ok(cache.get('a', 2));
  assert.is(cache.get('b', 2), undefined, 'b was least recently used');
  assert.is(cache.get('c', 4_999)?.subject, 'c');
  assert.is(cache.get('c', 5_001), undefined, 'maxAge');
  cache.set('d', id('d', 3), 0);
  assert.is(cache.get('d', 3_000), undefined, 'exp');
});

test.run();
