/**
 * Verified identities kept across restarts, so that the reconnect storm of a
 * restarted hub (every agent comes back with the token it had) costs a hash
 * and a key lookup per connect instead of a signature check.
 *
 * An entry is keyed by the SHA-256 of the token (the token itself is never
 * written: the hash admits only someone who presents the token, which the
 * hub's own logs never hold) and holds the claims an Identity is made of, the
 * `kid` and `alg` the token was verified with, and `exp`. It is used only
 * while its `exp` has not passed and its `kid` is still in the verifier's key
 * set (checked at each use, and when the file is written), and dropped
 * otherwise. Tokens without a `kid` are not kept (nothing would say when
 * their key is gone).
 *
 * The file is written durably (lib/durable-file.ts), mode 0600, at most once
 * per `flushDelayMs` while new tokens arrive and on close, never per connect.
 * A file that cannot be read or parsed, or was written under another
 * configuration (issuer, audience, algorithms), is ignored with one warning:
 * the hub then checks signatures as on a first start. Whoever can write this
 * file can admit tokens, as whoever can write keys/jwks.json can: both live in
 * the data dir's keys/ folder (0700).
 */
import crypto from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import { writeFileDurably } from '../lib/durable-file.js';
import type { Logger } from '../lib/log.js';
import { keysDir } from './keys.js';

/** File names in `<dataDir>/keys/`: one per verifier the hub runs (its own keys, the external JWKS). */
export const IDENTITY_STORE_FILES = { own: 'verified-tokens.json', external: 'verified-tokens-external.json' } as const;

export function identityStoreFile(dataDir: string, source: keyof typeof IDENTITY_STORE_FILES): string {
  return path.join(keysDir(dataDir), IDENTITY_STORE_FILES[source]);
}

/** The claims an Identity is made of (auth/claims.ts identityFromClaims); nothing else of the token is kept. */
export interface StoredClaims {
  role: unknown;
  sub: unknown;
  caps?: unknown;
  scope?: unknown;
  exp: number;
}

export interface StoredIdentity {
  kid: string;
  alg: string;
  claims: StoredClaims;
}

interface StoreFile {
  version: 1;
  /** The verifier configuration the entries were verified under (see policyOf). */
  policy: string;
  /** Token hash (SHA-256, base64url) -> entry. */
  entries: Record<string, StoredIdentity>;
}

export interface IdentityStoreOptions {
  /** Least time between two writes while new identities arrive (ms). */
  flushDelayMs: number;
  /** Entries kept at most; the least recently used go first. */
  maxEntries: number;
  /** Accepted algorithms: an entry of another one is not loaded. */
  algorithms: readonly string[];
  /** The configuration entries must have been verified under; any other file is ignored. */
  policy: string;
  logger?: Logger | undefined;
  /** Epoch ms. */
  now: () => number;
  /** Whether the key `kid` (for `alg`) is still trusted: false drops its entries, undefined (keys unavailable) keeps them. */
  keyTrusted: (kid: string, alg: string) => Promise<boolean | undefined>;
}

const FILE_VERSION = 1;
const HASH = /^[A-Za-z0-9_-]{43}$/;
const MAX_KID_LENGTH = 256;

/** The one-shot digest where Node has it (20.12+: no Hash object per connect), else a Hash. */
const sha256: (text: string) => string = typeof crypto.hash === 'function'
  ? (text) => crypto.hash('sha256', text, 'base64url')
  : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('base64url');

export function tokenHash(token: string): string {
  return sha256(token);
}

/** A fingerprint of what a verified token was checked against: entries from another configuration are not trusted. */
export function policyOf(p: { issuer?: string | undefined; audience?: readonly string[] | undefined; algorithms: readonly string[] }): string {
  return tokenHash(JSON.stringify([p.issuer ?? null, p.audience ? [...p.audience].sort() : null, [...p.algorithms].sort()]));
}

/** A file path as an Adapter<string>: read as is, written durably with mode 0600. */
export function fileAdapter(file: string): Adapter<string> & { file: string } {
  return {
    file,
    async read() {
      try {
        return await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    write: (text) => writeFileDurably(file, text, { mode: 0o600 }),
  };
}

export class IdentityStore {
  readonly #entries = new Map<string, StoredIdentity>();
  readonly #adapter: Adapter<string>;
  readonly #o: IdentityStoreOptions;
  readonly #where: string;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #dirty = false;
  #closed = false;

  constructor(adapter: Adapter<string>, options: IdentityStoreOptions) {
    this.#adapter = adapter;
    this.#o = options;
    this.#where = 'file' in adapter && typeof adapter.file === 'string' ? adapter.file : 'the identity store';
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Reads the entries; anything wrong with the file is one warning and an empty store, never an error. */
  async load(): Promise<void> {
    let text: string | null;
    try {
      text = await this.#adapter.read();
    } catch (err) {
      this.#warn(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return;
    }
    if (text === null) return;
    let file: unknown;
    try {
      file = JSON.parse(text);
    } catch {
      this.#warn('is not JSON');
      this.#markDirty(); // replaced by a good file at the next write
      return;
    }
    if (!isStoreFile(file)) {
      this.#warn(`is not an identity store of version ${FILE_VERSION}`);
      this.#markDirty();
      return;
    }
    if (file.policy !== this.#o.policy) {
      this.#o.logger?.info({ file: this.#where }, 'verified identities not reused: they were verified under another issuer, audience or algorithms');
      this.#markDirty();
      return;
    }
    const nowS = this.#o.now() / 1000;
    let dropped = 0;
    for (const [hash, entry] of Object.entries(file.entries)) {
      if (HASH.test(hash) && isEntry(entry) && this.#o.algorithms.includes(entry.alg) && entry.claims.exp > nowS) this.#entries.set(hash, entry);
      else dropped += 1;
    }
    if (dropped > 0) this.#markDirty();
    this.#trim();
  }

  /** The entry of `hash` unless its `exp` has passed (then it is dropped). */
  get(hash: string): StoredIdentity | undefined {
    const entry = this.#entries.get(hash);
    if (entry === undefined) return undefined;
    this.#entries.delete(hash);
    if (entry.claims.exp * 1000 <= this.#o.now()) {
      this.#markDirty();
      return undefined;
    }
    this.#entries.set(hash, entry); // Map order is the recency order
    return entry;
  }

  set(hash: string, entry: StoredIdentity): void {
    if (this.#closed || entry.kid.length > MAX_KID_LENGTH) return;
    this.#entries.delete(hash);
    this.#entries.set(hash, entry);
    this.#trim();
    this.#markDirty();
  }

  delete(hash: string): void {
    if (this.#entries.delete(hash)) this.#markDirty();
  }

  /** Drops the entries whose key is no longer trusted (one key lookup per distinct kid, no signature). */
  async pruneKeys(): Promise<void> {
    if ((await this.#dropUntrusted()) > 0) this.#markDirty();
  }

  /** Writes now if anything changed, then stops writing. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#flush();
  }

  #markDirty(): void {
    this.#dirty = true;
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => { this.#timer = undefined; void this.#flush(); }, this.#o.flushDelayMs);
    this.#timer.unref(); // a pending write never keeps a process alive; close() writes it
  }

  #trim(): void {
    while (this.#entries.size > this.#o.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }

  /** One write at a time; a change made during a write is written by the next one. */
  async #flush(): Promise<void> {
    while (this.#writing) await this.#writing;
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#writing = this.#write().finally(() => { this.#writing = undefined; });
    await this.#writing;
  }

  async #write(): Promise<void> {
    try {
      await this.#dropUntrusted();
      const nowS = this.#o.now() / 1000;
      const entries: Record<string, StoredIdentity> = {};
      for (const [hash, entry] of this.#entries) {
        if (entry.claims.exp > nowS) entries[hash] = entry;
        else this.#entries.delete(hash);
      }
      const file: StoreFile = { version: FILE_VERSION, policy: this.#o.policy, entries };
      await this.#adapter.write(JSON.stringify(file));
    } catch (err) {
      // The next restart then checks these tokens' signatures again: a cost, not a fault.
      this.#o.logger?.warn({ file: this.#where, err: (err as Error).message }, 'verified identities not written');
    }
  }

  /** Entries dropped because their key left the key set; a lookup that fails otherwise (keys unavailable) keeps them. */
  async #dropUntrusted(): Promise<number> {
    const trusted = new Map<string, boolean | undefined>();
    for (const { kid, alg } of this.#entries.values()) {
      const k = `${alg} ${kid}`;
      if (!trusted.has(k)) trusted.set(k, await this.#o.keyTrusted(kid, alg));
    }
    let dropped = 0;
    for (const [hash, { kid, alg }] of this.#entries) {
      if (trusted.get(`${alg} ${kid}`) === false && this.#entries.delete(hash)) dropped += 1;
    }
    return dropped;
  }

  #warn(what: string): void {
    this.#o.logger?.warn({ file: this.#where }, `verified identities ignored: the file ${what}; their tokens are checked again`);
  }
}

function isStoreFile(value: unknown): value is StoreFile {
  if (!isObject(value)) return false;
  return value['version'] === FILE_VERSION && typeof value['policy'] === 'string' && isObject(value['entries']);
}

function isEntry(value: unknown): value is StoredIdentity {
  if (!isObject(value) || !isObject(value['claims'])) return false;
  const { kid, alg, claims } = value as { kid: unknown; alg: unknown; claims: Record<string, unknown> };
  return typeof kid === 'string' && kid.length > 0 && kid.length <= MAX_KID_LENGTH && typeof alg === 'string'
    && typeof claims['exp'] === 'number' && Number.isFinite(claims['exp']);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
