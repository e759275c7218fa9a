/**
 * Verified identities by token string, so that a client reconnecting with the
 * same token (every agent does, after each network blip or broker restart)
 * costs a Map lookup instead of a signature check. An Ed25519 verify is
 * ~50-100 us; a connect storm of thousands of agents pays it once per token.
 *
 * Bounded (least recently used goes first) so that a flood of distinct valid
 * tokens cannot grow memory, and an entry never outlives the token's `exp`.
 * It may also be capped below `exp` (`maxAgeMs`) so that a key removed from
 * the key set stops admitting cached tokens within that time too.
 * Only successes are cached: a refused token is checked again each time.
 */
import type { Identity } from './types.js';

interface Entry {
  identity: Identity;
  /** Epoch ms after which the entry is not used. */
  until: number;
}

export class IdentityCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries: number,
    private readonly maxAgeMs: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cached identity of `token`, unless expired at `now` (epoch ms). */
  get(token: string, now: number): Identity | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined) return undefined;
    this.entries.delete(token);
    if (now >= entry.until) return undefined;
    this.entries.set(token, entry); // re-insert: Map order is the recency order
    return entry.identity;
  }

  set(token: string, identity: Identity, now: number): void {
    if (this.maxEntries <= 0) return;
    const until = Math.min(identity.expiresAt * 1000, now + this.maxAgeMs);
    if (until <= now) return;
    this.entries.delete(token);
    this.entries.set(token, { identity, until });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
