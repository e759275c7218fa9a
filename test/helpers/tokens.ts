import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { Role, Verifier } from '../../auth/types.js';
import { issueToken, type TokenSigner } from '../../auth/tokens.js';
import { createVerifier } from '../../auth/verify.js';

/**
 * Tokens for broker tests: the real issuer (auth/tokens.ts) and verifier
 * (auth/verify.ts) around an Ed25519 key made in memory, so no data dir is
 * needed. Tokens the issuer rightly refuses to make (expired, a wildcard
 * node id) are signed with jose directly, with the same trusted key.
 */

export interface TestClaims {
  role: Role;
  sub: string;
  caps?: string[];
  /** Seconds from now until `exp`. Default 3600. */
  ttlSeconds?: number;
}

export interface TokenKit {
  verifier: Verifier;
  /** Issued by auth/tokens.ts with the key the verifier trusts. */
  sign(claims: TestClaims): Promise<string>;
  /** Signed with the trusted key but bypassing the issuer's checks: expired (negative ttl), odd subjects. */
  signRaw(claims: TestClaims): Promise<string>;
  /** Well formed and naming the trusted kid, but signed with another key. */
  signForeign(claims: TestClaims): Promise<string>;
}

const KID = 'broker-test-key';

export async function tokenKit(): Promise<TokenKit> {
  const trusted = await generateKeyPair('EdDSA', { extractable: true });
  const foreign = await generateKeyPair('EdDSA');
  const jwk = { ...(await exportJWK(trusted.publicKey)), kid: KID, alg: 'EdDSA', use: 'sig' };
  const verifier = await createVerifier({ jwks: { keys: [jwk] } });
  const signer: TokenSigner = { kid: KID, alg: 'EdDSA', privateKey: trusted.privateKey };
  return {
    verifier,
    sign: (claims) =>
      issueToken({ role: claims.role, subject: claims.sub, caps: claims.caps, ttlSeconds: claims.ttlSeconds ?? 3600 }, signer),
    signRaw: (claims) => signWith(trusted.privateKey, claims),
    signForeign: (claims) => signWith(foreign.privateKey, claims),
  };
}

function signWith(key: CryptoKey, claims: TestClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role: claims.role, ...(claims.caps ? { caps: claims.caps } : {}) })
    .setProtectedHeader({ alg: 'EdDSA', kid: KID, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.ttlSeconds ?? 3600))
    .sign(key);
}
