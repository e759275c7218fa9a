/**
 * The hub's own Ed25519 signing key, kept in `<dataDir>/keys/`:
 *
 *   keys/               mode 0700
 *     signing-key.pem   the current private key, PKCS8 PEM, mode 0600
 *     jwks.json         every public key still trusted: {keys:[{kty,crv,x,kid,alg,use}]}
 *
 * `kid` is the RFC 7638 thumbprint of the public key, so it is derived, never
 * stored apart from the key it names.
 *
 * Rotation (`rotateSigningKey`) makes a new current key and keeps the old
 * public keys in jwks.json: tokens signed before the rotation verify until
 * they expire. The old private key is deleted: nothing may sign with it again.
 * To retire an old key for good (say it leaked), remove its entry from
 * jwks.json; every token it signed is then refused as `unknown_key`.
 */
import { generateKeyPair, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, importPKCS8, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose';
import { syncDirectory, writeFileDurably } from '../lib/durable-file.js';
import { EdgefedError } from '../lib/errors.js';

export const SIGNING_ALG = 'EdDSA';
export const KEYS_DIR = 'keys';
export const PRIVATE_KEY_FILE = 'signing-key.pem';
export const JWKS_FILE = 'jwks.json';

/** A public verification key as written to jwks.json. */
export interface PublicJwk extends JWK {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: typeof SIGNING_ALG;
  use: 'sig';
}

export interface SigningKey {
  /** RFC 7638 thumbprint of the public key; the `kid` header of every token it signs. */
  kid: string;
  alg: typeof SIGNING_ALG;
  /** Non-extractable: the PEM on disk is the only copy that can leave the process. */
  privateKey: CryptoKey;
  /** The public half of the current key. */
  current: PublicJwk;
  /** Every trusted public key, the current one first: pass it to `createVerifier({ jwks })`. */
  jwks: { keys: JWK[] };
  /** Where jwks.json lives: `createVerifier({ jwksFile })` picks up rotations made by another process. */
  jwksFile: string;
  /** True when this call made the key (first start or after a rotation). */
  created: boolean;
}

const generateEd25519 = promisify(generateKeyPair);

export function keysDir(dataDir: string): string {
  return path.join(dataDir, KEYS_DIR);
}

/** The signing key of `dataDir`, or undefined when it has none yet (nothing is made). */
export async function loadSigningKey(dataDir: string): Promise<SigningKey | undefined> {
  const dir = keysDir(dataDir);
  const pem = await readPrivateKey(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
  return pem === undefined ? undefined : loadKey(dir, pem, false);
}

/** Loads the signing key of `dataDir`, making one (and its directory) on first use. */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const dir = await ensureKeysDir(dataDir);
  const pem = await readPrivateKey(dir);
  if (pem === undefined) return installNewKey(dir);
  return loadKey(dir, pem, false);
}

/**
 * Makes a new current signing key; the previous public keys stay in jwks.json
 * so the tokens they signed still verify until their `exp`.
 */
export async function rotateSigningKey(dataDir: string): Promise<SigningKey> {
  return installNewKey(await ensureKeysDir(dataDir));
}

async function ensureKeysDir(dataDir: string): Promise<string> {
  await mkdir(dataDir, { recursive: true });
  const dir = keysDir(dataDir);
  // Not recursive: the mode must apply to keys/ itself, not to a data dir made on the way.
  const made = await mkdir(dir, { mode: 0o700 }).then(() => true, (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
    return false;
  });
  // A new keys/ must survive a power cut with the key written into it.
  if (made) await syncDirectory(dataDir);
  return dir;
}

async function readPrivateKey(dir: string): Promise<string | undefined> {
  const file = path.join(dir, PRIVATE_KEY_FILE);
  try {
    await refuseLooseMode(file);
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Like ssh: a private key others can read is refused rather than silently used. */
async function refuseLooseMode(file: string): Promise<void> {
  if (process.platform === 'win32') return; // no POSIX modes to check
  const { mode } = await stat(file);
  if ((mode & 0o077) !== 0) {
    throw new EdgefedError('EDGEFED_ERR_KEY_MODE', `${file} is readable by others (mode ${(mode & 0o777).toString(8)}); run "chmod 600 ${file}"`);
  }
}

/**
 * Order matters for a crash half-way: the public key is published first, then
 * the private key replaces the current one. A crash in between leaves an
 * unused public key, never a signing key whose tokens nobody accepts.
 */
async function installNewKey(dir: string): Promise<SigningKey> {
  // PEM straight from the generator, and key objects made afresh from it: on
  // Node 20.20 exporting a just-generated key object as JWK was seen to
  // deadlock against the garbage collector (bench/RESULTS.md, auth-storm).
  const { privateKey: pem } = await generateEd25519('ed25519', {
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const jwk = await publicJwkOf(createPublicKey(pem));
  const trusted = await readJwks(dir);
  await writeJwks(dir, [jwk, ...trusted.filter((k) => k.kid !== jwk.kid)]);
  await writeAtomically(path.join(dir, PRIVATE_KEY_FILE), pem, 0o600);
  return loadKey(dir, pem, true);
}

async function loadKey(dir: string, pem: string, created: boolean): Promise<SigningKey> {
  const current = await publicJwkOf(createPublicKey(pem));
  const trusted = await readJwks(dir);
  const keys = [current, ...trusted.filter((k) => k.kid !== current.kid)];
  // jwks.json lost or edited without the current key: trust it again, or the hub's own tokens fail.
  if (!trusted.some((k) => k.kid === current.kid)) await writeJwks(dir, keys);
  return {
    kid: current.kid,
    alg: SIGNING_ALG,
    privateKey: await importPKCS8(pem, SIGNING_ALG),
    current,
    jwks: { keys },
    jwksFile: path.join(dir, JWKS_FILE),
    created,
  };
}

async function publicJwkOf(key: KeyObject): Promise<PublicJwk> {
  const { kty, crv, x } = key.export({ format: 'jwk' });
  if (kty !== 'OKP' || crv !== 'Ed25519' || typeof x !== 'string') {
    throw new EdgefedError('EDGEFED_ERR_KEY_TYPE', `the signing key must be Ed25519, got ${String(kty)}/${String(crv)}`);
  }
  const kid = await calculateJwkThumbprint({ kty, crv, x });
  return { kty, crv, x, kid, alg: SIGNING_ALG, use: 'sig' };
}

/**
 * The trusted public keys of jwks.json, or none when the file does not exist
 * yet. Keys added by hand (another algorithm, say) are kept as they are.
 */
async function readJwks(dir: string): Promise<JWK[]> {
  const file = path.join(dir, JWKS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return parseJwks(text, file).keys;
}

/** JWK members that only a private or secret key has (RFC 7518 section 6). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'] as const;

/**
 * Parses a JSON Web Key Set, with errors that name `source`. A set holding a
 * private or secret key is refused: it was published by mistake, and a
 * secret key would let anyone who can read the set mint tokens.
 */
export function parseJwks(text: string, source: string): JSONWebKeySet {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EdgefedError('EDGEFED_ERR_JWKS', `${source} is not JSON (${(err as Error).message})`);
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'object' && k !== null && !Array.isArray(k))) {
    throw new EdgefedError('EDGEFED_ERR_JWKS', `${source} is not a JSON Web Key Set ({"keys": [...]})`);
  }
  const jwks = keys as JWK[];
  if (jwks.some((k) => PRIVATE_MEMBERS.some((m) => m in k))) {
    throw new EdgefedError('EDGEFED_ERR_JWKS', `${source} holds a private or secret key; publish only public keys`);
  }
  return { keys: jwks };
}

async function writeJwks(dir: string, keys: JWK[]): Promise<void> {
  await writeAtomically(path.join(dir, JWKS_FILE), `${JSON.stringify({ keys }, null, 2)}\n`, 0o644);
}

/**
 * Temp file then rename, so a reader never sees half a key. The file is
 * created with its final mode: a chmod afterwards would leave a window in
 * which the private key is readable by others. The file is fsynced before the
 * rename and the directory after it, so a power cut leaves the old key or the
 * new one.
 */
async function writeAtomically(file: string, content: string, mode: number): Promise<void> {
  // A temp name of this process's own: `edgefed token rotate` may write while the hub does.
  await writeFileDurably(file, content, { tempFile: `${file}.${process.pid}.tmp`, mode });
}
