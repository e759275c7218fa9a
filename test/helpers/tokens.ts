import { errors, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { TokenError, type Identity, type Role, type TokenRefusalCode, type Verifier } from '../../auth/types.js';

/**
 * Tokens for broker tests, made with jose directly: an Ed25519 key pair, a
 * signer and a minimal Verifier honouring the auth/types.ts contract (an
 * Identity, or a TokenError with a code). It stands in for auth/ so the
 * broker's rules are tested on their own.
 */

export interface TestClaims {
  role: Role;
  sub: string;
  caps?: string[];
  scope?: string;
  /** Seconds from now until `exp`; negative makes an expired token. Default 3600. */
  ttlSeconds?: number;
}

export interface TokenKit {
  verifier: Verifier;
  /** Signed with the key the verifier trusts. */
  sign(claims: TestClaims): Promise<string>;
  /** Well formed, but signed with a key the verifier does not know. */
  signForeign(claims: TestClaims): Promise<string>;
  /** How many times `verify` ran (the broker verifies once per CONNECT). */
  readonly verifyCalls: number;
}

const KID = 'test-key';

export async function tokenKit(): Promise<TokenKit> {
  const trusted = await generateKeyPair('EdDSA');
  const foreign = await generateKeyPair('EdDSA');
  let verifyCalls = 0;
  const verifier: Verifier = {
    async verify(token) {
      verifyCalls += 1;
      try {
        const { payload, protectedHeader } = await jwtVerify(token, trusted.publicKey, { algorithms: ['EdDSA'] });
        return toIdentity(payload, protectedHeader.kid);
      } catch (error) {
        throw toTokenError(error);
      }
    },
  };
  return {
    verifier,
    sign: (claims) => signWith(trusted.privateKey, claims),
    signForeign: (claims) => signWith(foreign.privateKey, claims),
    get verifyCalls() {
      return verifyCalls;
    },
  };
}

function signWith(key: CryptoKey, claims: TestClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role: claims.role, caps: claims.caps ?? [], ...(claims.scope ? { scope: claims.scope } : {}) })
    .setProtectedHeader({ alg: 'EdDSA', kid: KID })
    .setSubject(claims.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.ttlSeconds ?? 3600))
    .sign(key);
}

function toIdentity(payload: JWTPayload, kid: string | undefined): Identity {
  const { role, caps, scope, sub, exp } = payload as JWTPayload & { role?: unknown; caps?: unknown; scope?: unknown };
  if ((role !== 'agent' && role !== 'operator' && role !== 'hub') || typeof sub !== 'string' || typeof exp !== 'number') {
    throw new TokenError('bad_claims', 'role, sub and exp are required');
  }
  const capList = Array.isArray(caps) ? caps.filter((cap): cap is string => typeof cap === 'string') : [];
  const scopes = typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
  return { role, subject: sub, caps: capList, scopes, expiresAt: exp, kid };
}

function toTokenError(error: unknown): TokenError {
  if (error instanceof TokenError) return error;
  const code: TokenRefusalCode =
    error instanceof errors.JWTExpired ? 'expired'
    : error instanceof errors.JWSSignatureVerificationFailed ? 'bad_signature'
    : error instanceof errors.JOSEAlgNotAllowed ? 'bad_algorithm'
    : error instanceof errors.JWTClaimValidationFailed ? 'bad_claims'
    : 'malformed';
  return new TokenError(code, error instanceof Error ? error.message : String(error));
}
