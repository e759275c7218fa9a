/**
 * JWS signature keys for node:crypto instead of WebCrypto: the check is the
 * one hot step of a first connect, and `crypto.verify` costs the main thread
 * far less per call than `crypto.subtle.verify` (whose job set-up, promise
 * and DOMException machinery jose goes through): see bench/RESULTS.md. Where
 * the checks run is signature-threads.ts's business.
 *
 * Keys still come from jose's key sets as CryptoKeys (jose matches `kid`,
 * `alg`, `use`, `key_ops`, and fetches and caches remote sets); each is
 * turned into a KeyObject once and kept beside it.
 */
import crypto, { KeyObject, type webcrypto } from 'node:crypto';
import { TokenError } from './types.js';

/** How node:crypto checks one JWS algorithm (RFC 7518 section 3, RFC 8037). */
interface AlgSpec {
  /** Digest for crypto.verify; null for EdDSA, which hashes inside. */
  digest: 'sha256' | 'sha384' | 'sha512' | null;
  /** What the key must be, as jose checks a CryptoKey: algorithm name, hash, curve. */
  keyName: 'Ed25519' | 'ECDSA' | 'RSASSA-PKCS1-v1_5' | 'RSA-PSS';
  namedCurve?: 'P-256' | 'P-384' | 'P-521';
  /** RSA-PSS: the salt is as long as the hash (RFC 7518 section 3.5). */
  saltLength?: number;
}

const eddsa: AlgSpec = { digest: null, keyName: 'Ed25519' };
const ecdsa = (bits: 256 | 384 | 512, namedCurve: AlgSpec['namedCurve']): AlgSpec => ({ digest: `sha${bits}`, keyName: 'ECDSA', namedCurve });
const rsa = (bits: 256 | 384 | 512, pss: boolean): AlgSpec =>
  ({ digest: `sha${bits}`, keyName: pss ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5', ...(pss ? { saltLength: bits / 8 } : {}) });

/** Every asymmetric JWS algorithm jose verifies on Node 20 (HMAC is refused by design: see verify.ts). */
const ALGORITHMS: Readonly<Record<string, AlgSpec>> = {
  EdDSA: eddsa,
  Ed25519: eddsa,
  ES256: ecdsa(256, 'P-256'),
  ES384: ecdsa(384, 'P-384'),
  ES512: ecdsa(512, 'P-521'),
  RS256: rsa(256, false),
  RS384: rsa(384, false),
  RS512: rsa(512, false),
  PS256: rsa(256, true),
  PS384: rsa(384, true),
  PS512: rsa(512, true),
};

export const SUPPORTED_ALGORITHMS: readonly string[] = Object.keys(ALGORITHMS);

export function isSupportedAlgorithm(alg: string): boolean {
  return Object.hasOwn(ALGORITHMS, alg);
}

/** A key ready for crypto.verify, with the options its algorithm needs. */
export interface VerificationKey {
  digest: AlgSpec['digest'];
  /** The KeyObject alone when the algorithm needs no options (EdDSA, RS*): node:crypto then skips reading them. */
  key: KeyObject | crypto.VerifyKeyObjectInput;
}

/** KeyObjects by the CryptoKey jose handed out, per algorithm: made once per key, dropped with it. */
const keyObjects = new WeakMap<webcrypto.CryptoKey, Map<string, VerificationKey>>();

/**
 * The KeyObject for `key` under `alg`, after the checks jose makes before a
 * verify (refusals keep jose's wording, and like jose's TypeErrors they are
 * `malformed`). `alg` must be supported.
 */
export function verificationKey(key: webcrypto.CryptoKey, alg: string): VerificationKey {
  let perAlg = keyObjects.get(key);
  const cached = perAlg?.get(alg);
  if (cached) return cached;
  const spec = ALGORITHMS[alg]!;
  checkCryptoKey(key, alg, spec);
  const made: VerificationKey = { digest: spec.digest, key: keyInput(KeyObject.from(key), spec) };
  if (!perAlg) keyObjects.set(key, (perAlg = new Map()));
  perAlg.set(alg, made);
  return made;
}

function keyInput(key: KeyObject, spec: AlgSpec): VerificationKey['key'] {
  // JWS carries ECDSA signatures as raw r || s (RFC 7518 section 3.4), not DER.
  if (spec.keyName === 'ECDSA') return { key, dsaEncoding: 'ieee-p1363' };
  if (spec.saltLength !== undefined) return { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.saltLength };
  return key;
}

function checkCryptoKey(key: webcrypto.CryptoKey, alg: string, spec: AlgSpec): void {
  const algorithm = key.algorithm as webcrypto.KeyAlgorithm & { hash?: { name: string }; namedCurve?: string; modulusLength?: number };
  const unusable = (what: string) => new TokenError('malformed', `token refused: CryptoKey does not support this operation, its ${what}`);
  if (key.type !== 'public') throw new TokenError('malformed', `token refused: CryptoKey instances must be of type "public" for the ${alg} algorithm`);
  if (algorithm.name !== spec.keyName) throw unusable(`algorithm.name must be ${spec.keyName}`);
  const hash = spec.keyName.startsWith('RS') ? `SHA-${spec.digest!.slice(3)}` : undefined;
  if (hash !== undefined && algorithm.hash?.name !== hash) throw unusable(`algorithm.hash must be ${hash}`);
  if (spec.namedCurve !== undefined && algorithm.namedCurve !== spec.namedCurve) throw unusable(`algorithm.namedCurve must be ${spec.namedCurve}`);
  if (!key.usages.includes('verify')) throw unusable('usages must include verify.');
  if (hash !== undefined && !((algorithm.modulusLength ?? 0) >= 2048)) {
    throw new TokenError('malformed', `token refused: ${alg} requires key modulusLength to be 2048 bits or larger`);
  }
}
