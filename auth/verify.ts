/**
 * Token verification, once per MQTT connect or HTTP request, through jose's
 * `jwtVerify`. The work is ordered cheapest first: the identity cache, then a
 * look at the header (size, shape, algorithm: `alg: none` and algorithms not
 * configured stop here, before any key is looked up or fetched), then jose
 * (key by `kid`, `crit`, signature, `exp`, `nbf`, `iss`, `aud`), then
 * edgefed's own claim rules (claims.ts). With an identity store, a token of
 * acceptable size is first looked up by its SHA-256 among the identities
 * verified before (also by a previous run, identity-store.ts): a hit costs a
 * key lookup by its kid, no header parsing and no signature.
 */
import { decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { Adapter } from 'lowdb';
import type { Logger } from '../lib/log.js';
import { identityFromClaims } from './claims.js';
import { IdentityCache } from './identity-cache.js';
import { fileAdapter, IdentityStore, policyOf, tokenHash, type StoredClaims } from './identity-store.js';
import { fileKeys, KeysUnavailableError, localKeys, remoteKeys, type KeyResolver } from './key-sources.js';
import { TokenError, type Identity, type TokenRefusalCode, type Verifier } from './types.js';
import { EdgefedError } from '../lib/errors.js';

export interface VerifierOptions {
  /** A key set in memory, e.g. `SigningKey.jwks`. Exactly one of jwks, jwksFile, jwksUrl. */
  jwks?: JSONWebKeySet;
  /** A JWKS file (e.g. `<dataDir>/keys/jwks.json`), read now and again when a token names an unknown kid. */
  jwksFile?: string;
  /** A JWKS URL, e.g. Vault's `https://vault:8200/v1/identity/oidc/.well-known/keys`. */
  jwksUrl?: string | URL;
  /** Required `iss` when set. */
  issuer?: string;
  /** Required `aud` (one of) when set. */
  audience?: string | string[];
  /** Accepted `alg` values (default ['EdDSA']; Vault signs RS256 unless its key says otherwise). */
  algorithms?: string[];
  /** Leeway for `exp`, `nbf` and `iat` against clock skew, in seconds (default 30). */
  clockToleranceS?: number;
  /** Remote JWKS: how long fetched keys are used (default 10 min). */
  jwksCacheMaxAgeMs?: number;
  /** JWKS file or URL: least time between two reloads for unknown kids (default 30 s). */
  jwksCooldownMs?: number;
  /** Remote JWKS: fetch timeout (default 5 s). */
  jwksTimeoutMs?: number;
  /** Verified tokens remembered (default 10,000; 0 turns the cache off). */
  identityCacheSize?: number;
  /** Longest a verified token is remembered, below its `exp` (default 10 min). */
  identityCacheMaxAgeMs?: number;
  /**
   * Keep verified identities across restarts (identity-store.ts): a file
   * path (written durably, mode 0600; `identityStoreFile(dataDir, ...)` is the
   * hub's), or any Adapter<string>. Holds a SHA-256 of each token, never the
   * token. Call `close()` to write the last changes. Off when not given.
   */
  identityStore?: string | Adapter<string>;
  /** Least time between two writes of the identity store while new tokens arrive (default 5 s). */
  identityStoreFlushMs?: number;
  /** Entries the identity store keeps at most, least recently used out first (default 100,000). */
  identityStoreSize?: number;
  /** Warnings about key files that could not be reloaded and identity stores that could not be read or written. */
  logger?: Logger;
  /** Clock in epoch ms (tests). */
  now?: () => number;
}

export const VERIFIER_DEFAULTS = {
  algorithms: ['EdDSA'],
  clockToleranceS: 30,
  jwksCacheMaxAgeMs: 10 * 60_000,
  jwksCooldownMs: 30_000,
  jwksTimeoutMs: 5_000,
  identityCacheSize: 10_000,
  identityCacheMaxAgeMs: 10 * 60_000,
  identityStoreFlushMs: 5_000,
  identityStoreSize: 100_000,
} as const;

/** Longer passwords are refused unread: a token of ours is ~400 bytes, Vault's ~1 KB. */
export const MAX_TOKEN_LENGTH = 8 * 1024;

/** The asymmetric JWS algorithms jose verifies on Node 20 (HMAC is refused by design: see checkAlgorithms). */
export const SUPPORTED_ALGORITHMS: readonly string[] = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

export interface TokenVerifier extends Verifier {
  /** Verified identities remembered now (for metrics and tests). */
  readonly cachedIdentities: number;
  /** Entries in the identity store now (0 without one). */
  readonly persistedIdentities: number;
  /** Writes the identity store's last changes and stops writing it. Verifying still works. */
  close(): Promise<void>;
}

export async function createVerifier(options: VerifierOptions): Promise<TokenVerifier> {
  const algorithms = checkAlgorithms(options.algorithms ?? [...VERIFIER_DEFAULTS.algorithms]);
  const keys = await keyResolver(options);
  const now = options.now ?? Date.now;
  const cache = new IdentityCache(
    options.identityCacheSize ?? VERIFIER_DEFAULTS.identityCacheSize,
    options.identityCacheMaxAgeMs ?? VERIFIER_DEFAULTS.identityCacheMaxAgeMs,
  );
  const clockToleranceS = options.clockToleranceS ?? VERIFIER_DEFAULTS.clockToleranceS;
  const audience = options.audience === undefined ? undefined : typeof options.audience === 'string' ? [options.audience] : [...options.audience];
  const joseOptions = {
    algorithms,
    clockTolerance: clockToleranceS,
    requiredClaims: ['exp', 'sub'],
    ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
    ...(audience !== undefined ? { audience } : {}),
  };
  const store = options.identityStore === undefined ? undefined : new IdentityStore(
    typeof options.identityStore === 'string' ? fileAdapter(options.identityStore) : options.identityStore,
    {
      flushDelayMs: options.identityStoreFlushMs ?? VERIFIER_DEFAULTS.identityStoreFlushMs,
      maxEntries: options.identityStoreSize ?? VERIFIER_DEFAULTS.identityStoreSize,
      algorithms,
      policy: policyOf({ issuer: options.issuer, audience, algorithms }),
      logger: options.logger,
      now,
      keyTrusted: (kid, alg) => keyTrusted(keys, kid, alg),
    },
  );
  if (store) {
    await store.load();
    // A key set at hand is asked now; a remote one at the first use or write, not at start.
    if (!options.jwksUrl) await store.pruneKeys();
  }

  /**
   * The identity the store kept for this very token (the same bytes, so the
   * header it was verified with), if its key is still trusted: no signature,
   * no header parsing.
   */
  async function persisted(hash: string): Promise<Identity | undefined> {
    const entry = store!.get(hash);
    if (entry === undefined) return undefined;
    const trusted = await keyTrusted(keys, entry.kid, entry.alg);
    if (trusted !== true) {
      // Keys unavailable (undefined): keep the entry for later; jose reports the outage for this token.
      if (trusted === false) store!.delete(hash);
      return undefined;
    }
    try {
      return identityFromClaims(entry.claims as unknown as Record<string, unknown>, entry.kid, clockToleranceS);
    } catch {
      store!.delete(hash); // claims this version would not grant: verify the token itself
      return undefined;
    }
  }

  async function verifySigned(token: string, hash: string | undefined, at: number): Promise<Identity> {
    let identity: Identity;
    let payload: JWTPayload;
    let kid: string | undefined;
    let alg: string;
    try {
      ({ payload, protectedHeader: { kid, alg } } = await jwtVerify(token, keys, { ...joseOptions, currentDate: new Date(at) }));
      identity = identityFromClaims(payload, kid, clockToleranceS);
    } catch (err) {
      throw toTokenError(err);
    }
    if (hash !== undefined && kid !== undefined) store!.set(hash, { kid, alg, claims: storedClaims(payload) });
    return identity;
  }

  async function verify(token: string): Promise<Identity> {
    const at = now();
    const cached = cache.get(token, at);
    if (cached) return cached;
    // A token of acceptable size is looked up by its hash first: a hit was verified as it is.
    const sized = typeof token === 'string' && token.length > 0 && token.length <= MAX_TOKEN_LENGTH;
    let hash = store && sized && store.size > 0 ? tokenHash(token) : undefined;
    const kept = hash !== undefined ? await persisted(hash) : undefined;
    if (kept) {
      cache.set(token, kept, at);
      return kept;
    }
    const header = checkHeader(token, algorithms);
    if (store && typeof header.kid === 'string') hash ??= tokenHash(token);
    else hash = undefined; // a token without a kid is not kept: nothing would say when its key is gone
    const identity = await verifySigned(token, hash, at);
    cache.set(token, identity, at);
    return identity;
  }

  return {
    verify,
    get cachedIdentities() { return cache.size; },
    get persistedIdentities() { return store?.size ?? 0; },
    close: async () => { await store?.close(); },
  };
}

/** The claims an Identity is made of: what the store keeps of a verified token. */
function storedClaims(payload: JWTPayload): StoredClaims {
  const { role, sub, caps, scope, exp } = payload as JWTPayload & { role?: unknown; caps?: unknown; scope?: unknown };
  return { role, sub, exp: exp!, ...(caps !== undefined ? { caps } : {}), ...(scope !== undefined ? { scope } : {}) };
}

/**
 * Whether the key set still holds `kid` for `alg`: a lookup as jose makes it
 * for a token (a file set may reload, a remote one fetch, within their
 * cooldowns), without a signature. undefined when the keys are unavailable.
 */
async function keyTrusted(keys: KeyResolver, kid: string, alg: string): Promise<boolean | undefined> {
  try {
    await keys({ alg, kid }, { payload: '', signature: '' });
    return true;
  } catch (err) {
    return err instanceof KeysUnavailableError ? undefined : false;
  }
}

function checkAlgorithms(algorithms: string[]): string[] {
  if (algorithms.length === 0) throw new EdgefedError('EDGEFED_ERR_AUTH_ALGORITHMS', 'configure at least one algorithm, e.g. EdDSA');
  for (const alg of algorithms) {
    if (alg.toLowerCase() === 'none') throw new EdgefedError('EDGEFED_ERR_AUTH_ALGORITHMS', '"none" would accept unsigned tokens');
    // A key set holds public keys; an HMAC secret in one would let any reader mint tokens.
    if (/^HS\d+$/.test(alg)) throw new EdgefedError('EDGEFED_ERR_AUTH_ALGORITHMS', `${alg} needs a shared secret; use EdDSA, ES256 or RS256 with a key set`);
    if (!SUPPORTED_ALGORITHMS.includes(alg)) throw new EdgefedError('EDGEFED_ERR_AUTH_ALGORITHMS', `${alg} is not supported; use one of ${SUPPORTED_ALGORITHMS.join(', ')}`);
  }
  return [...algorithms];
}

async function keyResolver(options: VerifierOptions): Promise<KeyResolver> {
  const given = [options.jwks, options.jwksFile, options.jwksUrl].filter(Boolean).length; // "" counts as not given
  if (given !== 1) throw new EdgefedError('EDGEFED_ERR_AUTH_KEYS', 'give exactly one of jwks, jwksFile, jwksUrl');
  const cooldownMs = options.jwksCooldownMs ?? VERIFIER_DEFAULTS.jwksCooldownMs;
  if (options.jwks) return localKeys(options.jwks);
  if (options.jwksFile) return fileKeys(options.jwksFile, cooldownMs, options.logger);
  return remoteKeys(jwksUrlOf(options.jwksUrl!), {
    cacheMaxAgeMs: options.jwksCacheMaxAgeMs ?? VERIFIER_DEFAULTS.jwksCacheMaxAgeMs,
    cooldownMs,
    timeoutMs: options.jwksTimeoutMs ?? VERIFIER_DEFAULTS.jwksTimeoutMs,
  });
}

function jwksUrlOf(value: string | URL): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new EdgefedError('EDGEFED_ERR_AUTH_KEYS', `"${String(value)}" is not a URL; e.g. https://vault:8200/v1/identity/oidc/.well-known/keys`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new EdgefedError('EDGEFED_ERR_AUTH_KEYS', `the JWKS URL must be https: (or http:), got ${url.protocol}`);
  return url;
}

/** Size, shape and algorithm, read without trusting anything: the signature is not checked yet. */
function checkHeader(token: string, algorithms: readonly string[]): ProtectedHeaderParameters {
  if (typeof token !== 'string' || token.length === 0) throw new TokenError('malformed', 'no token');
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('malformed', `token longer than ${MAX_TOKEN_LENGTH} characters`);
  if (token.split('.').length !== 3) throw new TokenError('malformed', 'not a compact JWS (three base64url parts)');
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new TokenError('malformed', 'the header is not base64url JSON');
  }
  const alg = header.alg;
  if (typeof alg !== 'string') throw new TokenError('malformed', 'the header has no "alg"');
  if (alg.toLowerCase() === 'none') throw new TokenError('bad_algorithm', 'unsigned token (alg "none") refused');
  if (!algorithms.includes(alg)) throw new TokenError('bad_algorithm', `algorithm ${alg.slice(0, 16)} is not accepted (accepted: ${algorithms.join(', ')})`);
  return header;
}

/** Every failure becomes a TokenError whose code says why; messages never hold the token. */
export function toTokenError(err: unknown): TokenError {
  if (err instanceof TokenError) return err;
  if (err instanceof KeysUnavailableError) return new TokenError('keys_unavailable', err.message);
  if (err instanceof errors.JWTExpired) return new TokenError('expired', 'token expired');
  if (err instanceof errors.JWTClaimValidationFailed) return claimError(err);
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenError('bad_signature', 'signature does not verify');
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return new TokenError('bad_algorithm', 'algorithm or header not accepted');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return new TokenError('unknown_key', 'no trusted key matches the token\'s kid');
  if (err instanceof errors.JWKSInvalid || err instanceof errors.JWKInvalid || err instanceof errors.JWKSTimeout) return new TokenError('unknown_key', `verification keys unusable: ${err.message}`);
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return new TokenError('malformed', 'not a well-formed JWT');
  return new TokenError('malformed', `token refused: ${err instanceof Error ? err.message : String(err)}`);
}

function claimError(err: InstanceType<typeof errors.JWTClaimValidationFailed>): TokenError {
  const failed = err.reason === 'check_failed';
  let code: TokenRefusalCode = 'bad_claims'; // missing sub or exp, a non-numeric date
  // A missing iss/aud is as wrong as a different one.
  if (err.claim === 'iss') code = 'wrong_issuer';
  else if (err.claim === 'aud') code = 'wrong_audience';
  else if ((err.claim === 'nbf' || err.claim === 'iat') && failed) code = 'not_yet_valid';
  return new TokenError(code, `"${err.claim}" claim ${failed ? 'check failed' : err.reason === 'missing' ? 'missing' : 'invalid'}`);
}
