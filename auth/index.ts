/**
 * JWT identities: the hub's signing keys, token issuing and verification.
 * The broker ACL and the HTTP API depend only on the Verifier and Identity
 * types; everything else here is how those are made.
 */
export { ROLES, STATE_WRITE, TokenError, WPK_WRITE, type Identity, type Role, type TokenRefusalCode, type Verifier } from './types.js';
export { DEFAULT_SUBJECTS, identityFromClaims, type EdgefedClaims } from './claims.js';
export { JWKS_FILE, KEYS_DIR, keysDir, loadOrCreateSigningKey, PRIVATE_KEY_FILE, rotateSigningKey, SIGNING_ALG, type PublicJwk, type SigningKey } from './keys.js';
export { checkIssueOptions, issueToken, MAX_TTL_SECONDS, type IssueOptions, type TokenSigner } from './tokens.js';
export { createVerifier, MAX_TOKEN_LENGTH, SUPPORTED_ALGORITHMS, VERIFIER_DEFAULTS, type TokenVerifier, type VerifierOptions } from './verify.js';
export { IDENTITY_STORE_FILES, identityStoreFile } from './identity-store.js';
