/**
 * Token verification, once per MQTT connect or HTTP request. The work is
 * ordered cheapest first: the identity cache, then a look at the header
 * (size, shape, algorithm: `alg: none` and algorithms not configured stop
 * here, before any key is looked up or fetched; then `crit`), the key by
 * `kid`, the signature on a signature thread, and only then the payload:
 * registered claims (exp, nbf, iss, aud) and edgefed's own claim rules.
 *
 * jose still finds and caches the keys (JWKS sets, files, URLs) and signs
 * tokens; the signature check and claim checks of a connect are done here
 * with node:crypto, because jose's WebCrypto path cost about as much main
 * thread time per connect as the rest of the connect (bench/RESULTS.md).
 * Refusals keep the codes and wording jose's path gave.
 */
import { errors, type JSONWebKeySet, type JWTHeaderParameters } from 'jose';
import type { Logger } from '../lib/log.js';
import { identityFromClaims } from './claims.js';
import { IdentityCache } from './identity-cache.js';
import { checkCrit, decodePayload, signedBytes, splitCompactJws, type CompactJws } from './jws.js';
import { fileKeys, KeysUnavailableError, localKeys, remoteKeys, type KeyResolver } from './key-sources.js';
import { checkRegisteredClaims, type ClaimPolicy } from './registered-claims.js';
import { isSupportedAlgorithm, SUPPORTED_ALGORITHMS, verificationKey, type VerificationKey } from './signature.js';
import { sharedSignatureThreads, type SignatureChecker } from './signature-threads.js';
import { TokenError, type Identity, type Verifier } from './types.js';

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
   * Where signatures are checked (default: the process's signature threads,
   * signature-threads.ts; `libuvPoolChecker` for libuv's pool).
   */
  signatures?: SignatureChecker;
  /** Warnings about key files that could not be reloaded. */
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
} as const;

/** Longer passwords are refused unread: a token of ours is ~400 bytes, Vault's ~1 KB. */
export const MAX_TOKEN_LENGTH = 8 * 1024;

export interface TokenVerifier extends Verifier {
  /** Verified identities remembered now (for metrics and tests). */
  readonly cachedIdentities: number;
}

export async function createVerifier(options: VerifierOptions): Promise<TokenVerifier> {
  const algorithms = checkAlgorithms(options.algorithms ?? [...VERIFIER_DEFAULTS.algorithms]);
  const keys = await keyResolver(options);
  const now = options.now ?? Date.now;
  const signatures = options.signatures ?? sharedSignatureThreads();
  const cache = new IdentityCache(
    options.identityCacheSize ?? VERIFIER_DEFAULTS.identityCacheSize,
    options.identityCacheMaxAgeMs ?? VERIFIER_DEFAULTS.identityCacheMaxAgeMs,
  );
  const policy: ClaimPolicy = {
    clockToleranceS: options.clockToleranceS ?? VERIFIER_DEFAULTS.clockToleranceS,
    ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
    ...(options.audience !== undefined ? { audience: typeof options.audience === 'string' ? [options.audience] : [...options.audience] } : {}),
  };

  async function verifyUncached(token: string, at: number): Promise<Identity> {
    const jws = checkHeader(token, algorithms);
    const { signingInput, signature } = signedBytes(jws);
    const key = await keyFor(jws, keys);
    if (!(await signatures.check(key, signingInput, signature))) throw new TokenError('bad_signature', 'signature does not verify');
    const claims = decodePayload(jws.payload);
    checkRegisteredClaims(claims, policy, Math.floor(at / 1000));
    return identityFromClaims(claims, typeof jws.header.kid === 'string' ? jws.header.kid : undefined, policy.clockToleranceS);
  }

  async function verify(token: string): Promise<Identity> {
    const at = now();
    const cached = cache.get(token, at);
    if (cached) return cached;
    const identity = await verifyUncached(token, at);
    cache.set(token, identity, at);
    return identity;
  }

  return {
    verify,
    get cachedIdentities() { return cache.size; },
  };
}

/** jose's key set picks the key by `kid` and `alg` (and fetches a remote set); its refusals become TokenErrors. */
async function keyFor(jws: CompactJws, keys: KeyResolver): Promise<VerificationKey> {
  let cryptoKey;
  try {
    cryptoKey = await keys(jws.header as JWTHeaderParameters, { protected: jws.headerPart, payload: jws.payload, signature: jws.signaturePart });
  } catch (err) {
    throw toTokenError(err);
  }
  return verificationKey(cryptoKey, jws.header.alg);
}

function checkAlgorithms(algorithms: string[]): string[] {
  if (algorithms.length === 0) throw new Error('EDGEFED_ERR_AUTH_ALGORITHMS: configure at least one algorithm, e.g. EdDSA');
  for (const alg of algorithms) {
    if (alg.toLowerCase() === 'none') throw new Error('EDGEFED_ERR_AUTH_ALGORITHMS: "none" would accept unsigned tokens');
    // A key set holds public keys; an HMAC secret in one would let any reader mint tokens.
    if (/^HS\d+$/.test(alg)) throw new Error(`EDGEFED_ERR_AUTH_ALGORITHMS: ${alg} needs a shared secret; use EdDSA, ES256 or RS256 with a key set`);
    if (!isSupportedAlgorithm(alg)) throw new Error(`EDGEFED_ERR_AUTH_ALGORITHMS: ${alg} is not supported; use one of ${SUPPORTED_ALGORITHMS.join(', ')}`);
  }
  return [...algorithms];
}

async function keyResolver(options: VerifierOptions): Promise<KeyResolver> {
  const given = [options.jwks, options.jwksFile, options.jwksUrl].filter(Boolean).length; // "" counts as not given
  if (given !== 1) throw new Error('EDGEFED_ERR_AUTH_KEYS: give exactly one of jwks, jwksFile, jwksUrl');
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
    throw new Error(`EDGEFED_ERR_AUTH_KEYS: "${String(value)}" is not a URL; e.g. https://vault:8200/v1/identity/oidc/.well-known/keys`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`EDGEFED_ERR_AUTH_KEYS: the JWKS URL must be https: (or http:), got ${url.protocol}`);
  return url;
}

/** Size, shape, algorithm and `crit`, read without trusting anything: the signature is not checked yet. */
function checkHeader(token: string, algorithms: readonly string[]): CompactJws {
  if (typeof token !== 'string' || token.length === 0) throw new TokenError('malformed', 'no token');
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('malformed', `token longer than ${MAX_TOKEN_LENGTH} characters`);
  const jws = splitCompactJws(token);
  const alg = jws.header.alg;
  if (alg.toLowerCase() === 'none') throw new TokenError('bad_algorithm', 'unsigned token (alg "none") refused');
  if (!algorithms.includes(alg)) throw new TokenError('bad_algorithm', `algorithm ${alg.slice(0, 16)} is not accepted (accepted: ${algorithms.join(', ')})`);
  checkCrit(jws.header);
  return jws;
}

/**
 * What the key sets throw becomes a TokenError whose code says why (a TokenError passes as is);
 * messages never hold the token.
 */
export function toTokenError(err: unknown): TokenError {
  if (err instanceof TokenError) return err;
  if (err instanceof KeysUnavailableError) return new TokenError('keys_unavailable', err.message);
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return new TokenError('bad_algorithm', 'algorithm or header not accepted');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return new TokenError('unknown_key', 'no trusted key matches the token\'s kid');
  if (err instanceof errors.JWKSInvalid || err instanceof errors.JWKInvalid || err instanceof errors.JWKSTimeout) return new TokenError('unknown_key', `verification keys unusable: ${err.message}`);
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return new TokenError('malformed', 'not a well-formed JWT');
  return new TokenError('malformed', `token refused: ${err instanceof Error ? err.message : String(err)}`);
}
