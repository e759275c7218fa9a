/**
 * Where verification keys come from: a key set in memory, a JWKS file, or a
 * JWKS URL (Vault: `<vault>/v1/identity/oidc/.well-known/keys`). Each is a
 * jose key resolver: it picks the key by the token's `kid` and caches the
 * imported key, so a connect costs no key parsing.
 *
 * Rotation: the file and the URL are read again when a token names a `kid`
 * not in the set (at most once per cooldown, so random kids cannot turn into
 * a read or fetch storm). A key set in memory changes only with a new verifier.
 */
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWTHeaderParameters, type CryptoKey } from 'jose';
import type { Logger } from '../lib/log.js';
import { parseJwks } from './keys.js';
import { EdgefedError } from '../lib/errors.js';

export type KeyResolver = (header: JWTHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

export interface RemoteKeyOptions {
  /** How long fetched keys are used before a fetch (default 10 min). */
  cacheMaxAgeMs: number;
  /** Least time between two fetches for unknown kids (default 30 s). */
  cooldownMs: number;
  /** Give up a fetch after this long (default 5 s). */
  timeoutMs: number;
}

/** The key set could not be read or fetched: the token was never checked. */
export class KeysUnavailableError extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'KeysUnavailableError';
  }
}

export function localKeys(jwks: JSONWebKeySet): KeyResolver {
  return createLocalJWKSet(jwks);
}

/** Reads `file` now (a bad file fails the start, not the first connect) and again for unknown kids. */
export async function fileKeys(file: string, cooldownMs: number, log?: Logger): Promise<KeyResolver> {
  let set = createLocalJWKSet(await readJwksFile(file));
  let lastRead = Number.NEGATIVE_INFINITY; // the first unknown kid may reload at once
  let reading: Promise<void> | undefined;

  const reload = async (): Promise<void> => {
    lastRead = Date.now();
    try {
      set = createLocalJWKSet(await readJwksFile(file));
    } catch (err) {
      // Keep the keys we have: a half-edited file must not lock everyone out.
      log?.warn({ file, err: (err as Error).message }, 'JWKS file not reloaded; keeping the previous keys');
    }
  };

  return async (header, token) => {
    try {
      return await set(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || Date.now() - lastRead < cooldownMs) throw err;
      reading ??= reload().finally(() => { reading = undefined; });
      await reading;
      return set(header, token);
    }
  };
}

export function remoteKeys(url: URL, options: RemoteKeyOptions): KeyResolver {
  const set = createRemoteJWKSet(url, {
    cacheMaxAge: options.cacheMaxAgeMs,
    cooldownDuration: options.cooldownMs,
    timeoutDuration: options.timeoutMs,
  });
  return async (header, token) => {
    try {
      return await set(header, token);
    } catch (err) {
      throw keyResolutionError(err, url);
    }
  };
}

/**
 * Errors about the token's key pass through; anything else (network, HTTP
 * status, a JWKS that is not one) means the keys are unavailable, which is
 * not the token's fault and is reported apart.
 */
function keyResolutionError(err: unknown, url: URL): unknown {
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new KeysUnavailableError(`verification keys unavailable from ${url.origin}${url.pathname}: ${reason}`, { cause: err });
}

async function readJwksFile(file: string): Promise<JSONWebKeySet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new EdgefedError('EDGEFED_ERR_JWKS', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const jwks = parseJwks(text, file);
  createLocalJWKSet(jwks); // throws now for a set jose cannot use
  return jwks;
}
