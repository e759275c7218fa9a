/**
 * `--auth jwt` for a whole federation: the hub's signing key in its data dir
 * (made on first start), the verifier every MQTT connection and HTTP request
 * goes through, and the hub's own token for its session with the broker.
 */
import { createVerifier, identityStoreFile, issueToken, loadOrCreateSigningKey, TokenError, type Identity, type Verifier } from '../auth/index.js';
import type { Logger } from '../lib/log.js';
import { EdgefedError } from '../lib/errors.js';

export interface JwtAuthOptions {
  /** Extra verification keys: a JWKS file (tokens signed elsewhere). */
  jwksFile?: string;
  /** Extra verification keys: a JWKS URL, e.g. Vault's `/v1/identity/oidc/.well-known/keys`. */
  jwksUrl?: string;
  /** Checked when set: tokens must carry this `iss` (and the hub's own carry it). */
  issuer?: string;
  /** Checked when set: tokens must carry this `aud`. */
  audience?: string;
  /** Algorithms accepted from the extra keys (default EdDSA; Vault signs RS256). */
  algorithms?: string[];
  /** Leeway for `exp` and `nbf` against clock skew, seconds (default 30). Sessions end when it runs out too. */
  clockToleranceS?: number;
}

export interface JwtAuth {
  verifier: Verifier;
  /** The hub's own `hub` token, never written anywhere. */
  hubToken: string;
  /** Where the hub's public keys are (for agents' operators and `edgefed token issue`). */
  jwksFile: string;
  /** Writes the verified identities kept for the next start (on federation stop). */
  close(): Promise<void>;
}

/** The hub's token lives as long as the process could; it is minted again on every start. */
const HUB_TOKEN_TTL_S = 365 * 24 * 3600;

export async function prepareJwtAuth(dataDir: string | undefined, o: JwtAuthOptions, log: Logger): Promise<JwtAuth> {
  if (dataDir === undefined) throw new EdgefedError('EDGEFED_ERR_AUTH_CONFIG', '--auth jwt needs a data dir for the hub\'s signing key (--data-dir)');
  const key = await loadOrCreateSigningKey(dataDir);
  if (key.created) log.info({ kid: key.kid, jwks: key.jwksFile }, 'made a new signing key (first start with --auth jwt)');
  const checks = { ...(o.issuer ? { issuer: o.issuer } : {}), ...(o.audience ? { audience: o.audience } : {}) };
  const tolerance = o.clockToleranceS !== undefined ? { clockToleranceS: o.clockToleranceS } : {};
  // The key file, not the keys in memory: a rotation by `edgefed token rotate` is picked up live.
  // Verified identities survive a restart (keys/verified-tokens*.json): a reconnect storm checks no signatures.
  const own = await createVerifier({ jwksFile: key.jwksFile, ...checks, ...tolerance, logger: log, identityStore: identityStoreFile(dataDir, 'own') });
  const external = o.jwksFile || o.jwksUrl
    ? await createVerifier({ ...(o.jwksFile ? { jwksFile: o.jwksFile } : { jwksUrl: o.jwksUrl! }), ...checks, ...tolerance, ...(o.algorithms ? { algorithms: o.algorithms } : {}), logger: log, identityStore: identityStoreFile(dataDir, 'external') })
    : undefined;
  const hubToken = await issueToken({ role: 'hub', subject: 'hub', ttlSeconds: HUB_TOKEN_TTL_S, ...checks }, key);
  const close = async () => { await Promise.all([own.close(), external?.close()]); };
  return { verifier: external ? firstOf(own, external) : own, hubToken, jwksFile: key.jwksFile, close };
}

/**
 * Tries the hub's own keys, then the external ones: a token whose key the
 * first does not know (`unknown_key`), or signed with an algorithm it does not
 * take (`bad_algorithm`: Vault signs RS256, the hub EdDSA), may be the
 * second's. Any other refusal is final: a bad signature under a known key is
 * not retried elsewhere.
 */
function firstOf(primary: Verifier, fallback: Verifier): Verifier {
  return {
    async verify(token: string): Promise<Identity> {
      try {
        return await primary.verify(token);
      } catch (err) {
        if (err instanceof TokenError && (err.code === 'unknown_key' || err.code === 'bad_algorithm')) return fallback.verify(token);
        throw err;
      }
    },
  };
}
