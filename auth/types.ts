/**
 * Who a client is, once its JWT is verified: the contract between token
 * verification (auth/), the broker's ACL (broker/acl.ts) and the HTTP API.
 * Claims are the JWT's: `sub` is the node id (or `operator` / `hub`), `role`
 * one of the three roles, `caps` the capabilities an agent may announce,
 * `scope` a space-separated list (`wpk:write`).
 */
export type Role = 'agent' | 'operator' | 'hub';
export const ROLES: readonly Role[] = ['agent', 'operator', 'hub'];

/** The scope that lets an operator create and cancel WPKs and register nodes over HTTP. */
export const WPK_WRITE = 'wpk:write';
/** Operators with this scope may change nodes' desired state (PATCH /federation/nodes/:id/desired). */
export const STATE_WRITE = 'state:write';

export interface Identity {
  role: Role;
  /** The node id for an agent; the token's subject for operators and hubs. */
  subject: string;
  /** Capabilities an agent token allows (empty for other roles). */
  caps: readonly string[];
  scopes: readonly string[];
  /** Epoch seconds, from `exp`. */
  expiresAt: number;
  /**
   * Epoch seconds until which the verifier accepts this token: `exp` plus its
   * clock tolerance. A session or stream opened with the token ends then; ending
   * it at `exp` would only let the client reconnect with the same token.
   */
  acceptedUntil: number;
  /** Key id the token was signed with, for logs. */
  kid: string | undefined;
}

/** Why a token was refused: logged (never the token itself) and counted by this code. */
export type TokenRefusalCode =
  | 'malformed' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'wrong_issuer' | 'wrong_audience' | 'bad_algorithm' | 'bad_claims' | 'unknown_key'
  /** The verification keys could not be fetched (a JWKS URL down): not the client's fault. */
  | 'keys_unavailable';

export class TokenError extends Error {
  constructor(readonly code: TokenRefusalCode, message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

/** Verifies a token once per connect / request; keys are cached inside. */
export interface Verifier {
  /** Resolves the identity, or rejects with a TokenError. */
  verify(token: string): Promise<Identity>;
}
