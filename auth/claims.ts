/**
 * The claims of an edgefed token and their rules, shared by issuing (what may
 * be signed) and verifying (what a signed token must hold to become an
 * Identity). A signature proves who wrote the claims, not that they make
 * sense: a Vault template or a hand-made token can sign anything, so the
 * verifier checks them again.
 */
import { isValidId, MAX_CAPABILITIES } from '../lib/ids.js';
import { ROLES, TokenError, type Identity, type Role } from './types.js';

/** Claims edgefed adds to the registered ones (`sub`, `iat`, `exp`, `iss`, `aud`). */
export interface EdgefedClaims {
  role: Role;
  /** Capabilities an agent may announce; agent tokens only. */
  caps?: string[];
  /** Space-separated (RFC 8693 style), e.g. "wpk:write". */
  scope?: string;
}

/** Subjects of operator and hub tokens when none is given. */
export const DEFAULT_SUBJECTS: Readonly<Record<Exclude<Role, 'agent'>, string>> = { operator: 'operator', hub: 'hub' };

/** Bounds on claims from the outside: a token is attacker-controlled until its claims pass these. */
export const MAX_SUBJECT_LENGTH = 256;
export const MAX_SCOPE_LENGTH = 1024;

/** RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function isScopeToken(value: unknown): value is string {
  return typeof value === 'string' && SCOPE_TOKEN.test(value);
}

/**
 * The Identity a verified payload grants, or a TokenError `bad_claims`.
 * The signature, `exp`, `nbf`, `iss` and `aud` are checked before this
 * (jose's jwtVerify in verify.ts).
 */
export function identityFromClaims(payload: Readonly<Record<string, unknown>>, kid: string | undefined, clockToleranceS = 0): Identity {
  const role = payload['role'];
  if (!isRole(role)) throw badClaims(`"role" must be one of ${ROLES.join(', ')}`);
  const subject = subjectOf(payload['sub'], role);
  const caps = capsOf(payload['caps'], role);
  const scopes = scopesOf(payload['scope']);
  const exp = payload['exp'];
  if (typeof exp !== 'number') throw badClaims('"exp" is required');
  return Object.freeze({ role, subject, caps, scopes, expiresAt: exp, acceptedUntil: exp + clockToleranceS, kid });
}

function subjectOf(sub: unknown, role: Role): string {
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) {
    throw badClaims(`"sub" must be a string of 1 to ${MAX_SUBJECT_LENGTH} characters`);
  }
  // The agent's subject becomes its MQTT client id and a topic level.
  if (role === 'agent' && !isValidId(sub)) throw badClaims('"sub" of an agent token must be a valid node id');
  return sub;
}

function capsOf(caps: unknown, role: Role): readonly string[] {
  if (caps !== undefined) {
    if (!Array.isArray(caps) || caps.length > MAX_CAPABILITIES || !caps.every(isValidId)) {
      throw badClaims(`"caps" must be an array of at most ${MAX_CAPABILITIES} capability names`);
    }
  }
  if (role !== 'agent') return Object.freeze([]); // caps grant nothing to other roles
  if (caps === undefined || caps.length === 0) throw badClaims('an agent token needs at least one capability in "caps"');
  return Object.freeze([...new Set(caps as string[])]);
}

function scopesOf(scope: unknown): readonly string[] {
  if (scope === undefined) return Object.freeze([]);
  if (typeof scope !== 'string' || scope.length > MAX_SCOPE_LENGTH) {
    throw badClaims(`"scope" must be a space-separated string of at most ${MAX_SCOPE_LENGTH} characters`);
  }
  return Object.freeze([...new Set(scope.split(' ').filter(Boolean))]);
}

function badClaims(message: string): TokenError {
  return new TokenError('bad_claims', `token claims refused: ${message}`);
}
