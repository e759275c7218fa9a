/**
 * Token verification (jose's jwtVerify behind createVerifier): the round
 * trip, every refusal with its code, the claim rules and the identity cache
 * against a key set in memory; EdDSA, ES256, RS256 and PS256 keys from a
 * JWKS file as Vault or another issuer publishes them, forged signatures,
 * `crit` and algorithm confusion; and the identities persisted across
 * restarts (auth/identity-store.ts).
 */
import crypto, { generateKeyPair, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { base64url, calculateJwkThumbprint, CompactSign, exportJWK, importPKCS8, SignJWT, type CryptoKey, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { Adapter } from 'lowdb';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createVerifier, issueToken, TokenError, type TokenRefusalCode, type TokenSigner, type TokenVerifier, type VerifierOptions } from '../auth/index.js';
import { IdentityCache } from '../auth/identity-cache.js';
import { capturingLogger, type LogLine } from './helpers/logs.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

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

// ---------------------------------------------------------------------------
// Keys from a JWKS file, every algorithm: what a forged, re-signed or confused
// token gets (moved from the hand-written JWS path's tests; jose does it now).

interface Signer { alg: string; kid: string; privateKey: KeyObject; jwk: Record<string, unknown> }

/** A key pair made as PEM first (exporting a just-generated KeyObject as JWK can deadlock on Node 20.20). */
function makeSigner(alg: string, kid: string, type: 'ed25519' | 'ec' | 'rsa', options: { modulusLength?: number } = {}): Signer {
  const pems = crypto.generateKeyPairSync(type as 'ec', {
    namedCurve: 'P-256', modulusLength: options.modulusLength ?? 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  } as crypto.ECKeyPairOptions<'pem', 'pem'>);
  const jwk = { ...crypto.createPublicKey(pems.publicKey).export({ format: 'jwk' }), kid, alg, use: 'sig' };
  return { alg, kid, privateKey: crypto.createPrivateKey(pems.privateKey), jwk };
}

const ED = makeSigner('EdDSA', 'ed-1', 'ed25519');
const ES = makeSigner('ES256', 'es-1', 'ec');
const RS = makeSigner('RS256', 'rs-1', 'rsa');
const PS = makeSigner('PS256', 'ps-1', 'rsa');
const SMALL_RS = makeSigner('RS256', 'rs-small', 'rsa', { modulusLength: 1024 });
const ALL_ALGS = ['EdDSA', 'ES256', 'RS256', 'PS256'];
/** Claims of an agent token; `extra` may break the rules on purpose (wrong types, missing claims). */
const claimsOf = (extra: Record<string, unknown> = {}): JWTPayload => ({ role: 'agent', sub: 'edge-001', caps: ['monitoring'], iat: nowS(), exp: nowS() + 600, ...extra }) as JWTPayload;
const enc = (value: unknown) => base64url.encode(typeof value === 'string' ? value : JSON.stringify(value));

function sign(signer: Signer, payload: JWTPayload = claimsOf(), header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT', ...header }).sign(signer.privateKey);
}

/** Signs claimsOf() under `header` exactly as given (jose's signers refuse malformed crit values and small RSA keys). */
function signRawHeader(header: Record<string, unknown>, signer: Signer = ED): string {
  const input = `${enc(header)}.${enc(claimsOf())}`;
  return `${input}.${base64url.encode(crypto.sign(signer.alg === 'EdDSA' ? null : 'sha256', Buffer.from(input), signer.privateKey))}`;
}

/** The signature of `token` replaced by `signature` (already base64url). */
const withSignature = (token: string, signature: string) => `${token.slice(0, token.lastIndexOf('.') + 1)}${signature}`;

/** A bounded test body that also gets the suite's typed context (uvu passes it to the handler). */
function inCtx<C>(body: (ctx: C, scope: Scope) => Promise<void>, options?: Parameters<typeof bounded>[1]): (ctx: C) => Promise<void> {
  return (ctx) => bounded((scope) => body(ctx, scope), options)();
}

interface FileCtx { dir: string; jwksFile: string }
const jose = suite<FileCtx>('auth: verify through jose, keys from a JWKS file', { dir: '', jwksFile: '' });

jose.before(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-verify-'));
  ctx.jwksFile = path.join(ctx.dir, 'jwks.json');
  await fs.writeFile(ctx.jwksFile, JSON.stringify({ keys: [ED.jwk, ES.jwk, RS.jwk, PS.jwk, SMALL_RS.jwk] }));
});

jose.after(async (ctx) => {
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

type FileOptions = Omit<VerifierOptions, 'jwksFile'>;
const fileVerifier = (jwksFile: string, options: FileOptions = {}) => createVerifier({ jwksFile, algorithms: ALL_ALGS, jwksCooldownMs: 60_000, ...options });

async function codeOf(jwksFile: string, token: string | Promise<string>, options: FileOptions = {}): Promise<TokenRefusalCode | 'accepted'> {
  const text = await token;
  try {
    await (await fileVerifier(jwksFile, options)).verify(text);
    return 'accepted';
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    if (text.length > 8) assert.not.ok(err.message.includes(text), 'the message never holds the token');
    return err.code;
  }
}

jose('EdDSA, ES256, RS256 and PS256 tokens from a JWKS file verify to their identity', inCtx<FileCtx>(async ({ jwksFile }) => {
  const v = await fileVerifier(jwksFile);
  for (const signer of [ED, ES, RS, PS]) {
    const identity = await v.verify(await sign(signer));
    assert.equal({ subject: identity.subject, caps: identity.caps, kid: identity.kid }, { subject: 'edge-001', caps: ['monitoring'], kid: signer.kid }, signer.alg);
  }
}));

jose('a forged signature, and a token signed by another key under a trusted kid, are bad_signature', inCtx<FileCtx>(async ({ jwksFile }) => {
  for (const signer of [ED, ES, RS, PS]) {
    const token = await sign(signer);
    const sigLength = base64url.decode(token.slice(token.lastIndexOf('.') + 1)).length;
    assert.is(await codeOf(jwksFile, withSignature(token, base64url.encode(crypto.randomBytes(sigLength)))), 'bad_signature', `${signer.alg} random signature`);
    const impostor = makeSigner(signer.alg, signer.kid, signer === ED ? 'ed25519' : signer === ES ? 'ec' : 'rsa');
    assert.is(await codeOf(jwksFile, sign(impostor)), 'bad_signature', `${signer.alg} right kid, wrong key`);
  }
}));

jose('a key embedded in the header is never used: the trusted kid picks the key', inCtx<FileCtx>(async ({ jwksFile }) => {
  const attacker = makeSigner('EdDSA', ED.kid, 'ed25519');
  assert.is(await codeOf(jwksFile, sign(attacker, claimsOf(), { jwk: attacker.jwk })), 'bad_signature');
}));

jose('ES256 signatures must be raw r||s (JWS), not DER; a signature of the wrong size is bad_signature', inCtx<FileCtx>(async ({ jwksFile }) => {
  const token = await sign(ES);
  const raw = base64url.decode(token.slice(token.lastIndexOf('.') + 1));
  const der = crypto.sign('sha256', Buffer.from(token.slice(0, token.lastIndexOf('.'))), { key: ES.privateKey, dsaEncoding: 'der' });
  assert.is(await codeOf(jwksFile, withSignature(token, base64url.encode(der))), 'bad_signature', 'DER');
  assert.is(await codeOf(jwksFile, withSignature(token, base64url.encode(raw.subarray(0, 63)))), 'bad_signature', 'short');
  assert.is(await codeOf(jwksFile, withSignature(await sign(ED), '')), 'bad_signature', 'empty');
}));

jose('an RSA key under 2048 bits is refused', inCtx<FileCtx>(async ({ jwksFile }) => {
  const v = await fileVerifier(jwksFile);
  try {
    await v.verify(signRawHeader({ alg: 'RS256', kid: SMALL_RS.kid }, SMALL_RS));
    assert.unreachable('a 1024-bit RSA key verified');
  } catch (err) {
    assert.instance(err, TokenError);
    assert.is((err as TokenError).code, 'malformed');
    assert.match((err as TokenError).message, /RS256 requires key modulusLength to be 2048 bits or larger/);
  }
}));

jose('a payload or header edited after signing is refused; characters outside base64url in the signature are malformed', inCtx<FileCtx>(async ({ jwksFile }) => {
  const token = await sign(ED);
  const [h, p, s] = token.split('.') as [string, string, string];
  for (const bad of [`+${s.slice(1)}`, `/${s.slice(1)}`, `${s}AAA` /* 89 characters: no length base64url has */]) {
    assert.is(await codeOf(jwksFile, withSignature(token, bad)), 'malformed', JSON.stringify(bad));
  }
  for (const edited of [`${h}.${p}=.${s}`, `${h} .${p}.${s}`, `${h}.${p.slice(0, 10)}*${p.slice(11)}.${s}`]) {
    assert.is.not(await codeOf(jwksFile, edited), 'accepted', edited.slice(0, 20));
  }
}));

jose('crit: unknown parameters are bad_algorithm, a broken crit is malformed, b64 must stay true', inCtx<FileCtx>(async ({ jwksFile }) => {
  const header = { alg: 'EdDSA', kid: ED.kid };
  assert.is(await codeOf(jwksFile, signRawHeader({ ...header, crit: ['exp'], exp: 1 })), 'bad_algorithm', 'not understood');
  assert.is(await codeOf(jwksFile, signRawHeader({ ...header, crit: ['http://example.com/x'], 'http://example.com/x': true })), 'bad_algorithm');
  for (const crit of [[], 'b64', [''], [1]]) {
    assert.is(await codeOf(jwksFile, signRawHeader({ ...header, crit, b64: true })), 'malformed', JSON.stringify(crit));
  }
  assert.is(await codeOf(jwksFile, signRawHeader({ ...header, crit: ['b64'] })), 'malformed', 'listed but absent');
  assert.is(await codeOf(jwksFile, signRawHeader({ ...header, crit: ['b64'], b64: false })), 'malformed', 'unencoded payload');
  assert.is(await codeOf(jwksFile, signRawHeader(header)), 'accepted', 'the same signer without crit');
  assert.is(await codeOf(jwksFile, sign(ED, claimsOf(), { crit: ['b64'], b64: true })), 'accepted', 'b64: true is a plain JWS');
}));

jose('the header and the signed payload must be JSON objects', inCtx<FileCtx>(async ({ jwksFile }) => {
  const payload = enc(claimsOf());
  const forged = (header: string) => `${header}.${payload}.${base64url.encode(crypto.randomBytes(64))}`;
  const signBytes = (bytes: Uint8Array) => new CompactSign(bytes).setProtectedHeader({ alg: ED.alg, kid: ED.kid }).sign(ED.privateKey);
  assert.is(await codeOf(jwksFile, forged(enc([{ alg: 'EdDSA' }]))), 'malformed', 'array header');
  assert.is(await codeOf(jwksFile, forged(enc('"EdDSA"'))), 'malformed', 'string header');
  assert.is(await codeOf(jwksFile, forged(base64url.encode(Buffer.from([0x7b, 0xff, 0x7d])))), 'malformed', 'not UTF-8');
  assert.is(await codeOf(jwksFile, forged(enc({ alg: 7 }))), 'malformed', 'alg not a string');
  assert.is(await codeOf(jwksFile, signBytes(new TextEncoder().encode('[1,2]'))), 'malformed', 'array payload');
  assert.is(await codeOf(jwksFile, signBytes(new TextEncoder().encode('not json'))), 'malformed', 'not JSON');
}));

jose('algorithms: none, HMAC and unlisted ones stop before any key; a kid of another key type is unknown_key', inCtx<FileCtx>(async ({ jwksFile }) => {
  assert.is(await codeOf(jwksFile, `${enc({ alg: 'none', kid: ED.kid })}.${enc(claimsOf())}.`), 'bad_algorithm');
  assert.is(await codeOf(jwksFile, sign(ES), { algorithms: ['EdDSA'] }), 'bad_algorithm');
  assert.is(await codeOf(jwksFile, sign({ ...ED, alg: 'EdDSA', kid: RS.kid })), 'unknown_key', 'an EdDSA token naming an RSA key');
  assert.is(await codeOf(jwksFile, sign({ ...ED, kid: 'nobody' })), 'unknown_key', 'unknown kid: the hub then asks its external keys');
  assert.is(await codeOf(jwksFile, `${enc({ alg: 'EdDSA', kid: 42 })}.${enc(claimsOf())}.${base64url.encode(crypto.randomBytes(64))}`), 'unknown_key', 'a kid that is no string');
  for (const algorithms of [['ES256K'], ['EdDSA', 'HS512'], ['ML-DSA-44']]) {
    try {
      await fileVerifier(jwksFile, { algorithms });
      assert.unreachable(algorithms.join(','));
    } catch (err) {
      assert.match((err as Error).message, /EDGEFED_ERR_AUTH_ALGORITHMS/);
    }
  }
}));

jose('registered claims: presence, types and times, with their codes', inCtx<FileCtx>(async ({ jwksFile }) => {
  const exp = nowS() + 600;
  const code = (token: Promise<string>, options?: FileOptions) => codeOf(jwksFile, token, options);
  assert.is(await code(sign(ED, claimsOf({ exp: nowS() - 31 }))), 'expired');
  assert.is(await code(sign(ED, claimsOf({ exp: nowS() - 5 }))), 'accepted', 'within the 30 s leeway');
  assert.is(await code(sign(ED, claimsOf({ exp: nowS() - 5 })), { clockToleranceS: 0 }), 'expired');
  assert.is(await code(sign(ED, claimsOf({ nbf: nowS() + 60 }))), 'not_yet_valid');
  assert.is(await code(sign(ED, claimsOf({ nbf: nowS() + 10 }))), 'accepted', 'within the leeway');
  for (const bad of [{ exp: String(exp) }, { nbf: 'soon' }, { iat: 'now' }, { exp: undefined }, { sub: undefined }]) {
    assert.is(await code(sign(ED, claimsOf(bad))), 'bad_claims', JSON.stringify(bad));
  }
  assert.is(await code(sign(ED, claimsOf({ iss: 'edgefed-hub', aud: ['x', 'edgefed'] })), { issuer: 'edgefed-hub', audience: 'edgefed' }), 'accepted');
  assert.is(await code(sign(ED, claimsOf({ iss: 'edgefed-hub', aud: 'edgefed' })), { issuer: 'other' }), 'wrong_issuer');
  assert.is(await code(sign(ED, claimsOf({ iss: 'edgefed-hub', aud: ['x'] })), { audience: ['edgefed', 'api'] }), 'wrong_audience');
  assert.is(await code(sign(ED, claimsOf({ aud: 7 })), { audience: 'edgefed' }), 'wrong_audience');
  assert.is(await code(sign(ED, claimsOf({ sub: undefined })), { issuer: 'edgefed-hub' }), 'wrong_issuer', 'a missing iss is found first');
}));

jose('many verifications in flight at once each get their own answer', inCtx<FileCtx>(async ({ jwksFile }) => {
  const v = await fileVerifier(jwksFile, { identityCacheSize: 0 });
  const good = await Promise.all(Array.from({ length: 100 }, (_, i) => sign([ED, ES, RS, PS][i % 4]!, claimsOf({ sub: `edge-${i}` }))));
  const forged = good.map((t) => withSignature(t, t.slice(t.lastIndexOf('.') + 1).replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))));
  const results = await Promise.all([...good, ...forged].map((t) => v.verify(t).then((id) => id.subject, (err: TokenError) => err.code)));
  assert.equal(results.slice(0, 100), good.map((_, i) => `edge-${i}`));
  assert.equal(new Set(results.slice(100)), new Set(['bad_signature']));
}, { timeoutMs: 10_000 }));

jose.run();

// ---------------------------------------------------------------------------
// Verified identities persisted across restarts (auth/identity-store.ts).

/**
 * Counts signature checks: jose verifies through WebCrypto's
 * `crypto.subtle.verify`. Restored when the test's scope closes.
 */
function countSignatureChecks(scope: Scope): { readonly count: number } {
  const subtle = globalThis.crypto.subtle;
  const original = subtle.verify;
  const counter = { count: 0 };
  subtle.verify = function (this: SubtleCrypto, ...args: Parameters<SubtleCrypto['verify']>) {
    counter.count += 1;
    return original.apply(this, args);
  } as SubtleCrypto['verify'];
  scope.defer(() => { subtle.verify = original; });
  return counter;
}

interface StoreCtx { dir: string; jwksFile: string; store: string }
const persisted = suite<StoreCtx>('auth: verified identities persisted across restarts', { dir: '', jwksFile: '', store: '' });

persisted.before.each(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-identities-'));
  ctx.jwksFile = path.join(ctx.dir, 'jwks.json');
  ctx.store = path.join(ctx.dir, 'verified-tokens.json');
  await fs.writeFile(ctx.jwksFile, JSON.stringify({ keys: [ED.jwk, ES.jwk] }));
});

persisted.after.each(async (ctx) => {
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

/** A verifier over the suite's key file and identity store, closed with the test's scope. */
async function storeVerifier(ctx: StoreCtx, scope: Scope, options: Omit<VerifierOptions, 'jwksFile'> = {}): Promise<TokenVerifier> {
  const v = await createVerifier({ jwksFile: ctx.jwksFile, algorithms: ['EdDSA', 'ES256'], identityStore: ctx.store, identityStoreFlushMs: 60_000, ...options });
  scope.defer(() => v.close());
  return v;
}

persisted('a restarted verifier admits a token it verified before without checking its signature', inCtx<StoreCtx>(async (ctx, scope) => {
  const token = await sign(ED, claimsOf({ scope: 'wpk:write' }));
  const first = await storeVerifier(ctx, scope);
  const identity = await first.verify(token);
  await first.close();
  const checks = countSignatureChecks(scope);
  const restarted = await storeVerifier(ctx, scope);
  assert.is(restarted.persistedIdentities, 1);
  const again = await restarted.verify(token);
  assert.equal({ ...again }, { ...identity }, 'the same identity');
  assert.is(checks.count, 0, 'no signature checked');
  await restarted.verify(await sign(ES));
  assert.is(checks.count, 1, 'a token new to the store is checked (the counter counts)');
  const forged = withSignature(token, base64url.encode(crypto.randomBytes(64)));
  assert.is((await refusal(restarted.verify(forged))).code, 'bad_signature', 'another token string (here: the same claims, another signature) is no hit');
}));

persisted('the file holds a hash of each token, never the token or its signature, and is mode 0600', inCtx<StoreCtx>(async (ctx, scope) => {
  const tokens = [await sign(ED), await sign(ES, claimsOf({ sub: 'edge-002' }))];
  const v = await storeVerifier(ctx, scope);
  for (const t of tokens) await v.verify(t);
  await v.close();
  const text = await fs.readFile(ctx.store, 'utf8');
  for (const t of tokens) {
    for (const part of [t, ...t.split('.')]) assert.not.ok(text.includes(part), 'no token part in the file');
  }
  const hashes = tokens.map((t) => crypto.createHash('sha256').update(t).digest('base64url'));
  assert.equal(Object.keys((JSON.parse(text) as { entries: object }).entries).sort(), hashes.sort());
  if (process.platform !== 'win32') assert.is((await fs.stat(ctx.store)).mode & 0o777, 0o600);
}));

persisted('a token whose kid was removed from the key set is refused even though it was persisted', inCtx<StoreCtx>(async (ctx, scope) => {
  const token = await sign(ED);
  const kept = await sign(ES);
  const first = await storeVerifier(ctx, scope);
  await first.verify(token);
  await first.verify(kept);
  await first.close();
  await fs.writeFile(ctx.jwksFile, JSON.stringify({ keys: [ES.jwk] })); // ED removed
  const restarted = await storeVerifier(ctx, scope);
  assert.is(restarted.persistedIdentities, 1, 'dropped at load');
  assert.is((await refusal(restarted.verify(token))).code, 'unknown_key');
  assert.is((await restarted.verify(kept)).kid, ES.kid);
  await restarted.close();
  const { entries } = JSON.parse(await fs.readFile(ctx.store, 'utf8')) as { entries: Record<string, { kid: string }> };
  assert.equal(Object.values(entries).map((e) => e.kid), [ES.kid], 'and gone from the file');
}));

persisted('expired entries are dropped: at load, at use, and from the file', inCtx<StoreCtx>(async (ctx, scope) => {
  let clock = Date.now();
  const short = await sign(ED, claimsOf({ exp: nowS() + 60 }));
  const long = await sign(ED, claimsOf({ sub: 'edge-002' }));
  const first = await storeVerifier(ctx, scope, { now: () => clock, clockToleranceS: 0 });
  await first.verify(short);
  await first.verify(long);
  await first.close();

  const loaded = await storeVerifier(ctx, scope, { now: () => clock, clockToleranceS: 0 });
  assert.is(loaded.persistedIdentities, 2);
  clock += 61_000;
  assert.is((await refusal(loaded.verify(short))).code, 'expired', 'past exp: jose decides, and refuses');
  assert.is(loaded.persistedIdentities, 1, 'dropped at use');
  await loaded.close();

  const later = await storeVerifier(ctx, scope, { now: () => clock, clockToleranceS: 0 });
  assert.is(later.persistedIdentities, 1, 'not loaded once expired');
  await later.close();
  const { entries } = JSON.parse(await fs.readFile(ctx.store, 'utf8')) as { entries: Record<string, { claims: { sub: string } }> };
  assert.equal(Object.values(entries).map((e) => e.claims.sub), ['edge-002']);
}));

persisted('a corrupt or foreign file is ignored with one warning, never fatal, and replaced', inCtx<StoreCtx>(async (ctx, scope) => {
  const token = await sign(ED);
  for (const content of ['{"version":1,"entr', '[1,2,3]', JSON.stringify({ version: 9, policy: 'x', entries: {} })]) {
    await fs.writeFile(ctx.store, content);
    const lines: LogLine[] = [];
    const checks = countSignatureChecks(scope);
    const v = await storeVerifier(ctx, scope, { logger: capturingLogger(lines) });
    const warnings = lines.filter((l) => l.level === 40);
    assert.is(warnings.length, 1, content);
    assert.match(String(warnings[0]!.msg), /verified identities ignored/);
    assert.is(warnings[0]!.file, ctx.store);
    assert.is(v.persistedIdentities, 0);
    assert.is((await v.verify(token)).subject, 'edge-001');
    assert.ok(checks.count >= 1, 'verified by its signature');
    await v.close();
    const file = JSON.parse(await fs.readFile(ctx.store, 'utf8')) as { version: number; entries: object };
    assert.is(file.version, 1, 'a good file replaced it');
    assert.is(Object.keys(file.entries).length, 1);
    await fs.rm(ctx.store);
  }
}));

persisted('entries verified under another issuer, audience or algorithms are not reused', inCtx<StoreCtx>(async (ctx, scope) => {
  const token = await sign(ED, claimsOf({ iss: 'hub-a', aud: 'edgefed' }));
  const first = await storeVerifier(ctx, scope, { issuer: 'hub-a' });
  await first.verify(token);
  await first.close();
  const same = await storeVerifier(ctx, scope, { issuer: 'hub-a' });
  assert.is(same.persistedIdentities, 1);
  await same.close();
  const other = await storeVerifier(ctx, scope, { issuer: 'hub-b' });
  assert.is(other.persistedIdentities, 0);
  assert.is((await refusal(other.verify(token))).code, 'wrong_issuer');
  const narrower = await storeVerifier(ctx, scope, { issuer: 'hub-a', audience: 'other' });
  assert.is(narrower.persistedIdentities, 0);
}));

persisted('writes are debounced: a burst of new tokens is one write, not one per token', inCtx<StoreCtx>(async (ctx, scope) => {
  const writes: string[] = [];
  let wrote!: () => void;
  const written = new Promise<void>((r) => { wrote = r; });
  const adapter: Adapter<string> = { read: async () => null, write: async (text) => { writes.push(text); wrote(); } };
  const v = await storeVerifier(ctx, scope, { identityStore: adapter, identityStoreFlushMs: 300 });
  const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => sign(ED, claimsOf({ sub: `edge-${i}` }))));
  await Promise.all(tokens.map((t) => v.verify(t)));
  assert.is(writes.length, 0, 'nothing written per connect');
  await written;
  assert.is(writes.length, 1);
  assert.is(Object.keys((JSON.parse(writes[0]!) as { entries: object }).entries).length, 20, 'all twenty in the one write');
  await v.close();
  assert.is(writes.length, 1, 'close writes only when something changed since');
}));

persisted('a write that fails is a warning, and the verifier goes on', inCtx<StoreCtx>(async (ctx, scope) => {
  const lines: LogLine[] = [];
  const adapter: Adapter<string> = { read: async () => null, write: async () => { throw Object.assign(new Error('EDGEFED_ERR_FILE_WRITE: disk full'), { code: 'ENOSPC' }); } };
  const v = await storeVerifier(ctx, scope, { identityStore: adapter, logger: capturingLogger(lines) });
  assert.is((await v.verify(await sign(ED))).subject, 'edge-001');
  await v.close();
  await waitFor(() => lines.some((l) => l.msg === 'verified identities not written'), { label: 'the warning' });
}));

persisted.run();
