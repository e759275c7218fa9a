/**
 * The verifier's own JWS handling (auth/jws.ts, auth/signature.ts,
 * auth/registered-claims.ts): every refusal of the node:crypto path with its
 * code, canonical base64url, `crit`, and ES256 / RS256 / PS256 keys from a
 * JWKS file as a Vault or another issuer would publish them.
 */
import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { base64url, CompactSign, SignJWT, type JWTPayload } from 'jose';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createVerifier, TokenError, type TokenRefusalCode, type VerifierOptions } from '../auth/index.js';
import { bounded } from './helpers/scope.js';

interface Signer { alg: string; kid: string; privateKey: KeyObject; jwk: Record<string, unknown> }

/** A key pair made as PEM first (exporting a just-generated KeyObject as JWK can deadlock on Node 20.20). */
function makeSigner(alg: string, kid: string, type: 'ed25519' | 'ec' | 'rsa', options: { namedCurve?: string; modulusLength?: number } = {}): Signer {
  const pems = crypto.generateKeyPairSync(type as 'ec', {
    namedCurve: options.namedCurve ?? 'P-256', modulusLength: options.modulusLength ?? 2048,
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
const nowS = () => Math.floor(Date.now() / 1000);
/** Claims of an agent token; `extra` may break the rules on purpose (wrong types, missing claims). */
const claims = (extra: Record<string, unknown> = {}): JWTPayload => ({ role: 'agent', sub: 'edge-001', caps: ['monitoring'], iat: nowS(), exp: nowS() + 600, ...extra }) as JWTPayload;
const enc = (value: unknown) => base64url.encode(typeof value === 'string' ? value : JSON.stringify(value));

function sign(signer: Signer, payload: JWTPayload = claims(), header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT', ...header }).sign(signer.privateKey);
}

/** A JWS over any bytes (a payload that is no JSON object), which SignJWT would not make. */
function signBytes(signer: Signer, payload: Uint8Array, header: Record<string, unknown> = {}): Promise<string> {
  return new CompactSign(payload).setProtectedHeader({ alg: signer.alg, kid: signer.kid, ...header }).sign(signer.privateKey);
}

/** The signature of `token` replaced by `signature` (already base64url). */
const withSignature = (token: string, signature: string) => `${token.slice(0, token.lastIndexOf('.') + 1)}${signature}`;

let jwksFile = '';
const test = suite('auth: the verifier\'s JWS path (node:crypto)');

test.before(async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-jws-'));
  jwksFile = path.join(dir, 'jwks.json');
  await fs.writeFile(jwksFile, JSON.stringify({ keys: [ED.jwk, ES.jwk, RS.jwk, PS.jwk, SMALL_RS.jwk] }));
});

test.after(async () => {
  await fs.rm(path.dirname(jwksFile), { recursive: true, force: true });
});

const verifier = (options: Omit<VerifierOptions, 'jwksFile'> = {}) => createVerifier({ jwksFile, algorithms: ALL_ALGS, jwksCooldownMs: 60_000, ...options });

async function codeOf(token: string | Promise<string>, options: Omit<VerifierOptions, 'jwksFile'> = {}): Promise<TokenRefusalCode | 'accepted'> {
  const text = await token;
  try {
    await (await verifier(options)).verify(text);
    return 'accepted';
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    if (text.length > 8) assert.not.ok(err.message.includes(text), 'the message never holds the token');
    return err.code;
  }
}

test('EdDSA, ES256, RS256 and PS256 tokens from a JWKS file verify to their identity', bounded(async () => {
  const v = await verifier();
  for (const signer of [ED, ES, RS, PS]) {
    const identity = await v.verify(await sign(signer));
    assert.equal({ subject: identity.subject, caps: identity.caps, kid: identity.kid }, { subject: 'edge-001', caps: ['monitoring'], kid: signer.kid }, signer.alg);
  }
}));

test('a forged signature, and a token signed by another key under a trusted kid, are bad_signature', bounded(async () => {
  for (const signer of [ED, ES, RS, PS]) {
    const token = await sign(signer);
    const sigLength = base64url.decode(token.slice(token.lastIndexOf('.') + 1)).length;
    assert.is(await codeOf(withSignature(token, base64url.encode(crypto.randomBytes(sigLength)))), 'bad_signature', `${signer.alg} random signature`);
    const impostor = makeSigner(signer.alg, signer.kid, signer === ED ? 'ed25519' : signer === ES ? 'ec' : 'rsa');
    assert.is(await codeOf(sign(impostor)), 'bad_signature', `${signer.alg} right kid, wrong key`);
  }
}));

test('a key embedded in the header is never used: the trusted kid picks the key', bounded(async () => {
  const attacker = makeSigner('EdDSA', ED.kid, 'ed25519');
  assert.is(await codeOf(sign(attacker, claims(), { jwk: attacker.jwk })), 'bad_signature');
}));

test('ES256 signatures must be raw r||s (JWS), not DER; a signature of the wrong size is bad_signature', bounded(async () => {
  const token = await sign(ES);
  const raw = base64url.decode(token.slice(token.lastIndexOf('.') + 1));
  const der = crypto.sign('sha256', Buffer.from(token.slice(0, token.lastIndexOf('.'))), { key: ES.privateKey, dsaEncoding: 'der' });
  assert.is(await codeOf(withSignature(token, base64url.encode(der))), 'bad_signature', 'DER');
  assert.is(await codeOf(withSignature(token, base64url.encode(raw.subarray(0, 63)))), 'bad_signature', 'short');
  assert.is(await codeOf(withSignature(await sign(ED), '')), 'bad_signature', 'empty');
}));

test('an RSA key under 2048 bits is refused as jose refuses it', bounded(async () => {
  const v = await verifier();
  try {
    await v.verify(signRawHeader({ alg: 'RS256', kid: SMALL_RS.kid }, SMALL_RS));
    assert.unreachable('a 1024-bit RSA key verified');
  } catch (err) {
    assert.instance(err, TokenError);
    assert.is((err as TokenError).code, 'malformed');
    assert.match((err as TokenError).message, /RS256 requires key modulusLength to be 2048 bits or larger/);
  }
}));

test('only canonical unpadded base64url: padding bits, "=", whitespace, + and / are malformed', bounded(async () => {
  const token = await sign(ED);
  const sig = token.slice(token.lastIndexOf('.') + 1); // 64 bytes: 86 characters, the last one holds 4 unused bits
  assert.is(sig.length % 4, 2);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(sig.at(-1)!);
  const nonCanonical = `${sig.slice(0, -1)}${alphabet[last | 1]}`;
  assert.equal(Buffer.from(nonCanonical, 'base64url'), Buffer.from(sig, 'base64url'), 'the same bytes');
  assert.is(await codeOf(withSignature(token, nonCanonical)), 'malformed', 'non-zero padding bits');
  for (const bad of [`${sig}==`, `${sig.slice(0, 40)} ${sig.slice(40)}`, `+${sig.slice(1)}`, `/${sig.slice(1)}`, `${sig}AAA` /* 89 characters: no length base64url has */]) {
    assert.is(await codeOf(withSignature(token, bad)), 'malformed', JSON.stringify(bad));
  }
  const [h, p, s] = token.split('.') as [string, string, string];
  assert.is(await codeOf(`${h}.${p}=.${s}`), 'malformed', 'padded payload');
  assert.is(await codeOf(`${h} .${p}.${s}`), 'malformed', 'space in the header');
  assert.is(await codeOf(`${h}.${p.slice(0, 10)}*${p.slice(11)}.${s}`), 'malformed', 'a character outside base64url in the payload');
}));

test('crit: unknown parameters are bad_algorithm, a broken crit is malformed, b64 must stay true', bounded(async () => {
  const header = { alg: 'EdDSA', kid: ED.kid };
  assert.is(await codeOf(signRawHeader({ ...header, crit: ['exp'], exp: 1 })), 'bad_algorithm', 'not understood');
  assert.is(await codeOf(signRawHeader({ ...header, crit: ['http://example.com/x'], 'http://example.com/x': true })), 'bad_algorithm');
  for (const crit of [[], 'b64', [''], [1], ['b64', 'b64']]) {
    assert.is(await codeOf(signRawHeader({ ...header, crit, b64: true })), 'malformed', JSON.stringify(crit));
  }
  assert.is(await codeOf(signRawHeader({ ...header, crit: ['b64'] })), 'malformed', 'listed but absent');
  assert.is(await codeOf(signRawHeader({ ...header, crit: ['b64'], b64: false })), 'malformed', 'unencoded payload');
  assert.is(await codeOf(signRawHeader(header)), 'accepted', 'the same signer without crit');
  assert.is(await codeOf(sign(ED, claims(), { crit: ['b64'], b64: true })), 'accepted', 'b64: true is a plain JWS, as jose accepts');
}));

/** Signs claims() under `header` exactly as given (jose's signers refuse malformed crit values and small RSA keys). */
function signRawHeader(header: Record<string, unknown>, signer: Signer = ED): string {
  const input = `${enc(header)}.${enc(claims())}`;
  return `${input}.${base64url.encode(crypto.sign(signer.alg === 'EdDSA' ? null : 'sha256', Buffer.from(input), signer.privateKey))}`;
}

test('the header and the signed payload must be JSON objects in UTF-8', bounded(async () => {
  const payload = enc(claims());
  const forged = (header: string) => `${header}.${payload}.${base64url.encode(crypto.randomBytes(64))}`;
  assert.is(await codeOf(forged(enc([{ alg: 'EdDSA' }]))), 'malformed', 'array header');
  assert.is(await codeOf(forged(enc('"EdDSA"'))), 'malformed', 'string header');
  assert.is(await codeOf(forged(base64url.encode(Buffer.from([0x7b, 0xff, 0x7d])))), 'malformed', 'not UTF-8');
  assert.is(await codeOf(forged(enc({ alg: 7 }))), 'malformed', 'alg not a string');
  assert.is(await codeOf(signBytes(ED, new TextEncoder().encode('[1,2]'))), 'malformed', 'array payload');
  assert.is(await codeOf(signBytes(ED, new TextEncoder().encode('not json'))), 'malformed', 'not JSON');
  assert.is(await codeOf(signBytes(ED, Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))), 'malformed', 'not UTF-8');
}));

test('algorithms: none, HMAC and unlisted ones stop before any key; a kid of another key type is unknown_key', bounded(async () => {
  assert.is(await codeOf(`${enc({ alg: 'none', kid: ED.kid })}.${enc(claims())}.`), 'bad_algorithm');
  assert.is(await codeOf(sign(ES), { algorithms: ['EdDSA'] }), 'bad_algorithm');
  assert.is(await codeOf(sign({ ...ED, alg: 'EdDSA', kid: RS.kid })), 'unknown_key', 'an EdDSA token naming an RSA key');
  assert.is(await codeOf(sign({ ...ED, kid: 'nobody' })), 'unknown_key', 'unknown kid: the hub then asks its external keys');
  assert.is(await codeOf(`${enc({ alg: 'EdDSA', kid: 42 })}.${enc(claims())}.${base64url.encode(crypto.randomBytes(64))}`), 'unknown_key', 'a kid that is no string');
  for (const algorithms of [['ES256K'], ['EdDSA', 'HS512'], ['ML-DSA-44']]) {
    try {
      await verifier({ algorithms });
      assert.unreachable(algorithms.join(','));
    } catch (err) {
      assert.match((err as Error).message, /EDGEFED_ERR_AUTH_ALGORITHMS/);
    }
  }
}));

test('registered claims: presence, types and times, with the codes jose gave', bounded(async () => {
  const exp = nowS() + 600;
  assert.is(await codeOf(sign(ED, claims({ exp: nowS() - 31 }))), 'expired');
  assert.is(await codeOf(sign(ED, claims({ exp: nowS() - 5 }))), 'accepted', 'within the 30 s leeway');
  assert.is(await codeOf(sign(ED, claims({ exp: nowS() - 5 })), { clockToleranceS: 0 }), 'expired');
  assert.is(await codeOf(sign(ED, claims({ nbf: nowS() + 60 }))), 'not_yet_valid');
  assert.is(await codeOf(sign(ED, claims({ nbf: nowS() + 10 }))), 'accepted', 'within the leeway');
  for (const bad of [{ exp: String(exp) }, { nbf: 'soon' }, { iat: 'now' }, { exp: undefined }, { sub: undefined }]) {
    assert.is(await codeOf(sign(ED, claims(bad))), 'bad_claims', JSON.stringify(bad));
  }
  assert.is(await codeOf(sign(ED, claims({ iss: 'edgefed-hub', aud: ['x', 'edgefed'] })), { issuer: 'edgefed-hub', audience: 'edgefed' }), 'accepted');
  assert.is(await codeOf(sign(ED, claims({ iss: 'edgefed-hub', aud: 'edgefed' })), { issuer: 'other' }), 'wrong_issuer');
  assert.is(await codeOf(sign(ED, claims({ iss: 'edgefed-hub', aud: ['x'] })), { audience: ['edgefed', 'api'] }), 'wrong_audience');
  assert.is(await codeOf(sign(ED, claims({ aud: 7 })), { audience: 'edgefed' }), 'wrong_audience');
  assert.is(await codeOf(sign(ED, claims({ sub: undefined })), { issuer: 'edgefed-hub' }), 'wrong_issuer', 'a missing iss is found first, as jose orders it');
}));

test('many verifications in flight at once each get their own answer', bounded(async () => {
  const v = await verifier({ identityCacheSize: 0 });
  const good = await Promise.all(Array.from({ length: 100 }, (_, i) => sign([ED, ES, RS, PS][i % 4]!, claims({ sub: `edge-${i}` }))));
  const forged = good.map((t) => withSignature(t, t.slice(t.lastIndexOf('.') + 1).replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))));
  const results = await Promise.all([...good, ...forged].map((t) => v.verify(t).then((id) => id.subject, (err: TokenError) => err.code)));
  assert.equal(results.slice(0, 100), good.map((_, i) => `edge-${i}`));
  assert.equal(new Set(results.slice(100)), new Set(['bad_signature']));
}, { timeoutMs: 10_000 }));

test.run();
