/**
 * Minting edgefed tokens: compact JWS (EdDSA) with the `kid` of the signing
 * key in the header, so verifiers pick the key by id and keep accepting
 * tokens of rotated-out keys that are still in the key set.
 */
import { SignJWT, type CryptoKey } from 'jose';
import { isValidId, MAX_CAPABILITIES } from '../lib/ids.js';
import { DEFAULT_SUBJECTS, isRole, isScopeToken, MAX_SUBJECT_LENGTH, type EdgefedClaims } from './claims.js';
import { ROLES, type Role } from './types.js';
import { EdgefedError } from '../lib/errors.js';

/** Ten years: longer is a typo, and a token lives as long as nobody removes its key. */
export const MAX_TTL_SECONDS = 10 * 366 * 86_400;

export interface IssueOptions {
  /** The node id for an agent (required); defaults to "operator" / "hub" for those roles. */
  subject?: string;
  role: Role;
  /** Capabilities the agent may announce: at least one, agents only. */
  caps?: readonly string[];
  /** OAuth-style scopes, e.g. ["wpk:write"]; sent as the space-separated `scope` claim. */
  scopes?: readonly string[];
  /** Lifetime from now, in whole seconds. */
  ttlSeconds: number;
  /** `iss`, checked by verifiers configured with an issuer. */
  issuer?: string;
  /** `aud`, checked by verifiers configured with an audience. */
  audience?: string | string[];
}

/** What signing needs: a SigningKey from keys.ts is one (a test may bring another key). */
export interface TokenSigner {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
}

/** Signs a token for `options`; throws EDGEFED_ERR_TOKEN_* for options no verifier would accept. */
export async function issueToken(options: IssueOptions, signer: TokenSigner): Promise<string> {
  const claims = claimsOf(options);
  const subject = subjectOf(options);
  const ttl = checkTtl(options.ttlSeconds);
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ ...claims })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
    .setSubject(subject)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl);
  if (options.issuer !== undefined) jwt.setIssuer(options.issuer);
  if (options.audience !== undefined) jwt.setAudience(options.audience);
  return jwt.sign(signer.privateKey);
}

/** Throws as issueToken would for `options`, without a key: check before making or loading one. */
export function checkIssueOptions(options: IssueOptions): void {
  claimsOf(options);
  subjectOf(options);
  checkTtl(options.ttlSeconds);
}

function claimsOf({ role, caps, scopes }: IssueOptions): EdgefedClaims {
  if (!isRole(role)) throw issueError('ROLE', `role must be one of ${ROLES.join(', ')}, got "${String(role)}"`);
  const claims: EdgefedClaims = { role };
  if (role === 'agent') claims.caps = checkCaps(caps ?? []);
  else if (caps !== undefined && caps.length > 0) throw issueError('CAPS', `capabilities belong to agent tokens only, not to the ${role} role`);
  const scope = [...new Set(scopes ?? [])];
  const bad = scope.find((s) => !isScopeToken(s));
  if (bad !== undefined) throw issueError('SCOPE', `scope "${bad}" may not hold spaces, quotes or backslashes (e.g. wpk:write)`);
  if (scope.length > 0) claims.scope = scope.join(' ');
  return claims;
}

function checkCaps(caps: readonly string[]): string[] {
  const unique = [...new Set(caps)];
  if (unique.length === 0) throw issueError('CAPS', 'an agent token needs at least one capability (e.g. monitoring)');
  if (unique.length > MAX_CAPABILITIES) throw issueError('CAPS', `at most ${MAX_CAPABILITIES} capabilities, got ${unique.length}`);
  const bad = unique.find((c) => !isValidId(c));
  if (bad !== undefined) throw issueError('CAPS', `"${bad}" is not a capability name (letters, digits, . _ -; up to 64)`);
  return unique;
}

function subjectOf({ role, subject }: IssueOptions): string {
  if (role === 'agent') {
    if (subject === undefined) throw issueError('SUBJECT', 'an agent token needs the node id as its subject');
    if (!isValidId(subject)) throw issueError('SUBJECT', `"${subject}" is not a node id (letters, digits, . _ -; up to 64)`);
    return subject;
  }
  const sub = subject ?? DEFAULT_SUBJECTS[role];
  if (sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) throw issueError('SUBJECT', `the subject must have 1 to ${MAX_SUBJECT_LENGTH} characters`);
  return sub;
}

function checkTtl(ttlSeconds: number): number {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) {
    throw issueError('TTL', `the lifetime must be 1 s to 10 years in whole seconds, got ${ttlSeconds}`);
  }
  return ttlSeconds;
}

function issueError(what: string, message: string): EdgefedError {
  return new EdgefedError(`EDGEFED_ERR_TOKEN_${what}`, message);
}
