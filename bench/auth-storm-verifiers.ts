/**
 * The auth-storm's verifier side: the verifier measured alone (CPU per new
 * token, cached and not), and the bench-only prototypes it is compared with
 * (node:crypto sync, on libuv's pool, on one worker; RS256 keys). Split from
 * auth-storm.ts, which drives the connect storms.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLocalJWKSet, jwtVerify, SignJWT, type JSONWebKeySet } from 'jose';
import { createVerifier, identityFromClaims, issueToken, loadOrCreateSigningKey, TokenError, type Identity, type SigningKey, type Verifier } from '../auth/index.js';
import { IdentityCache } from '../auth/identity-cache.js';
import { WorkerSignatures } from './auth-storm-worker.js';
import { silentLogger } from '../lib/log.js';

/** Client ids and subjects of the storm's nodes start with this. */
export const PREFIX = 'as';

export async function mint(key: SigningKey, ids: string[]): Promise<string[]> {
  return Promise.all(ids.map((id) => issueToken({ role: 'agent', subject: id, caps: ['monitoring'], ttlSeconds: 3600 }, key)));
}

/** CPU time of this process's main thread so far, ms (Linux: /proc/self/task/<pid>/stat utime + stime). */
export function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}
export async function rsaKeySet(dir: string): Promise<{ jwksFile: string; mint(subject: string, role: 'agent' | 'hub'): Promise<string> }> {
  // PEM out of the key generation and fresh KeyObjects from it: Node 20.20 self-deadlocked here once
  // when the generated KeyObject itself was exported as JWK (KeyObjectHandle::ExportJWK holds the key's
  // mutex while it allocates; a GC then ran ~KeyGenJob, which takes the same mutex).
  const pems = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const publicKey = crypto.createPublicKey(pems.publicKey);
  const privateKey = crypto.createPrivateKey(pems.privateKey);
  const jwksFile = path.join(dir, 'rs256-jwks.json');
  await fs.writeFile(jwksFile, JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' }] }));
  return {
    jwksFile,
    mint(subject, role) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT(role === 'agent' ? { role, caps: ['monitoring'] } : { role })
        .setProtectedHeader({ alg: 'RS256', kid: 'bench-rs256', typ: 'JWT' }).setSubject(subject).setIssuedAt(now).setExpirationTime(now + 3600)
        .sign(privateKey);
    },
  };
}

export interface ProtoVerifier extends Verifier { close(): Promise<void> }

/** See VerifierKind. Keys by kid from the JWKS file, imported once. */
export async function protoVerifier(jwksFile: string, how: 'sync' | 'pool' | 'worker', alg: 'EdDSA' | 'RS256' = 'EdDSA'): Promise<ProtoVerifier> {
  const digest = alg === 'RS256' ? 'sha256' : null;
  const jwks = JSON.parse(await fs.readFile(jwksFile, 'utf8')) as { keys: Array<{ kid: string } & crypto.JsonWebKey> };
  const keys = new Map<string, KeyObject>(jwks.keys.map((k) => [k.kid, crypto.createPublicKey({ key: k, format: 'jwk' })]));
  const worker = how === 'worker' ? new WorkerSignatures([...keys.values()][0]!, digest) : undefined;
  const cache = new IdentityCache(10_000, 10 * 60_000);
  const json = (part: string): Record<string, unknown> => {
    try {
      return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new TokenError('malformed', 'not base64url JSON');
    }
  };
  const check = (data: Buffer, key: KeyObject, sig: Buffer): Promise<boolean> | boolean => {
    if (worker) return worker.verify(data, sig);
    if (how === 'pool') return new Promise((resolve, reject) => crypto.verify(digest, data, key, sig, (err, ok) => (err ? reject(err) : resolve(ok))));
    return crypto.verify(digest, data, key, sig);
  };
  return {
    async close() { await worker?.close(); },
    async verify(token: string): Promise<Identity> {
      const now = Date.now();
      const cached = cache.get(token, now);
      if (cached) return cached;
      const dot1 = token.indexOf('.');
      const dot2 = token.indexOf('.', dot1 + 1);
      if (token.length > 8192 || dot1 < 0 || dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) throw new TokenError('malformed', 'not a compact JWS');
      const header = json(token.slice(0, dot1));
      if (header['alg'] !== alg) throw new TokenError('bad_algorithm', `only ${alg}`);
      const kid = typeof header['kid'] === 'string' ? header['kid'] : undefined;
      const key = kid === undefined ? undefined : keys.get(kid);
      if (!key) throw new TokenError('unknown_key', 'no key for this kid');
      const ok = await check(Buffer.from(token.slice(0, dot2)), key, Buffer.from(token.slice(dot2 + 1), 'base64url'));
      if (!ok) throw new TokenError('bad_signature', 'signature does not verify');
      const payload = json(token.slice(dot1 + 1, dot2));
      const s = now / 1000;
      if (typeof payload['exp'] !== 'number' || payload['exp'] <= s - 30) throw new TokenError('expired', 'token expired');
      if (typeof payload['nbf'] === 'number' && payload['nbf'] > s + 30) throw new TokenError('not_yet_valid', 'not yet valid');
      const identity = identityFromClaims(payload, kid);
      cache.set(token, identity, now);
      return identity;
    },
  };
}

export interface VerifierAlone { firstUs: number; cachedUs: number; nodeSyncUs: number; joseUs: number; rs256Us: number; product: BurstCpu; jose: BurstCpu }
interface BurstCpu { mainUs: number; processUs: number }

/**
 * CPU per token of `verifier` over `tokens` (all new to it), 200 in flight as
 * in a storm: of the main thread (what limits the broker) and of the whole
 * process (the pool's signature checks included). No clients, no broker.
 */
async function burstCpu(verifier: Verifier, tokens: readonly string[], inFlight = 200): Promise<BurstCpu> {
  const main0 = mainThreadCpuMs();
  const cpu0 = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < tokens.length) await verifier.verify(tokens[next++]!);
  }));
  const cpu = process.cpuUsage(cpu0);
  return { mainUs: ((mainThreadCpuMs() - main0) * 1000) / tokens.length, processUs: (cpu.user + cpu.system) / tokens.length };
}

/**
 * The product's verification path before 2026-11-27 evening, for the
 * micro-measure: jose's jwtVerify (WebCrypto) with the options it had, then
 * edgefed's claim rules; no identity cache (every token is new to it anyway).
 */
async function joseVerifier(jwksFile: string): Promise<Verifier> {
  const keys = createLocalJWKSet(JSON.parse(await fs.readFile(jwksFile, 'utf8')) as JSONWebKeySet);
  const options = { algorithms: ['EdDSA'], clockTolerance: 30, requiredClaims: ['exp', 'sub'] };
  return {
    async verify(token: string): Promise<Identity> {
      const { payload, protectedHeader } = await jwtVerify(token, keys, options);
      return identityFromClaims(payload, protectedHeader.kid);
    },
  };
}

/** The verifier alone, as prepareJwtAuth builds it (the key file), µs per token: unseen, then cached. */
export async function verifierAlone(n: number): Promise<VerifierAlone> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-bench-verify-'));
  try {
    const key = await loadOrCreateSigningKey(dir);
    const tokens = await mint(key, Array.from({ length: n }, (_, i) => `${PREFIX}-${i}`));
    const verifier = await createVerifier({ jwksFile: key.jwksFile, logger: silentLogger });
    const pass = async (v: Verifier = verifier) => {
      const t0 = performance.now();
      for (const token of tokens) await v.verify(token);
      return ((performance.now() - t0) * 1000) / n;
    };
    const firstUs = await pass();
    const cachedUs = await pass();
    const nodeSyncUs = await pass(await protoVerifier(key.jwksFile, 'sync'));
    const joseUs = await pass(await joseVerifier(key.jwksFile));
    const product = await burstCpu(await createVerifier({ jwksFile: key.jwksFile, logger: silentLogger, identityCacheSize: 0 }), tokens);
    const jose = await burstCpu(await joseVerifier(key.jwksFile), tokens);
    const rsa = await rsaKeySet(dir);
    const rsaTokens = await Promise.all(Array.from({ length: n }, (_, i) => rsa.mint(`${PREFIX}-${i}`, 'agent')));
    const rsaVerifier = await createVerifier({ jwksFile: rsa.jwksFile, algorithms: ['RS256'], logger: silentLogger });
    const r0 = performance.now();
    for (const token of rsaTokens) await rsaVerifier.verify(token);
    const rs256Us = ((performance.now() - r0) * 1000) / n;
    return { firstUs, cachedUs, nodeSyncUs, joseUs, rs256Us, product, jose };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

