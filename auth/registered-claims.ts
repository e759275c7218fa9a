/**
 * The registered claims of RFC 7519 section 4.1 that a verifier checks
 * against its configuration and the clock: `iss`, `aud`, `sub` and `exp`
 * present, `iat`/`nbf`/`exp` numbers, `nbf` and `exp` with a leeway. The rules
 * and their order are those of jose's `jwtVerify` (validateClaimsSet), which
 * this replaces on the hot path, and so are the refusal codes edgefed gave
 * for them (see toTokenError in verify.ts).
 */
import { TokenError, type TokenRefusalCode } from './types.js';

export interface ClaimPolicy {
  /** Required `iss` when set. */
  issuer?: string;
  /** Required `aud`: the token's (one or a list) must name one of these. */
  audience?: readonly string[];
  /** Leeway for `nbf` and `exp`, in seconds. */
  clockToleranceS: number;
}

/** Throws a TokenError unless `claims` pass `policy` at `nowS` (epoch seconds). */
export function checkRegisteredClaims(claims: Readonly<Record<string, unknown>>, policy: ClaimPolicy, nowS: number): void {
  checkPresence(claims, policy);
  if (policy.issuer !== undefined && claims['iss'] !== policy.issuer) throw claimError('iss', 'check_failed');
  if (policy.audience !== undefined && !audienceMatches(claims['aud'], policy.audience)) throw claimError('aud', 'check_failed');
  numericDate(claims, 'iat');
  const nbf = numericDate(claims, 'nbf');
  if (nbf !== undefined && nbf > nowS + policy.clockToleranceS) throw claimError('nbf', 'check_failed');
  const exp = numericDate(claims, 'exp');
  if (exp !== undefined && exp <= nowS - policy.clockToleranceS) throw new TokenError('expired', 'token expired');
}

/** jose checks presence in this order: what the configuration asks for, then `sub`, then `exp`. */
function checkPresence(claims: Readonly<Record<string, unknown>>, policy: ClaimPolicy): void {
  const required = [...(policy.issuer !== undefined ? ['iss'] : []), ...(policy.audience !== undefined ? ['aud'] : []), 'sub', 'exp'];
  for (const claim of required) {
    if (!Object.hasOwn(claims, claim)) throw claimError(claim, 'missing');
  }
}

function audienceMatches(aud: unknown, accepted: readonly string[]): boolean {
  if (typeof aud === 'string') return accepted.includes(aud);
  return Array.isArray(aud) && accepted.some((a) => aud.includes(a));
}

function numericDate(claims: Readonly<Record<string, unknown>>, claim: 'iat' | 'nbf' | 'exp'): number | undefined {
  const value = claims[claim];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw claimError(claim, 'invalid');
  return value;
}

type Reason = 'missing' | 'invalid' | 'check_failed';

/** A missing `iss`/`aud` is as wrong as a different one; anything else amiss with a claim is `bad_claims`. */
function claimError(claim: string, reason: Reason): TokenError {
  let code: TokenRefusalCode = 'bad_claims';
  if (claim === 'iss') code = 'wrong_issuer';
  else if (claim === 'aud') code = 'wrong_audience';
  else if ((claim === 'nbf' || claim === 'iat') && reason === 'check_failed') code = 'not_yet_valid';
  return new TokenError(code, `"${claim}" claim ${reason === 'check_failed' ? 'check failed' : reason}`);
}
