/**
 * Whether the store is taking writes, as /health, /metrics and the log say
 * it. An outage is logged twice, when it starts (with its reason) and when
 * it ends (with how long and how much was caught up): a database that is
 * away for an hour must not become thousands of identical error lines.
 * Every failed write or check is still counted.
 */
import { errorFields, type Logger } from '../../lib/log.js';
import type { StoreDescription } from './types.js';

export interface StoreStatus extends StoreDescription {
  state: 'up' | 'down';
  /** Epoch ms of the first failure of the current outage, null while up. */
  down_since: number | null;
  /** The current outage's latest reason (never a password), null while up. */
  last_error: string | null;
  /** Failed writes and checks since the hub started. */
  failures: number;
}

export class StoreHealth {
  #downSince: number | null = null;
  #lastError: string | null = null;
  #failures = 0;

  constructor(private readonly describe: StoreDescription, private readonly log: Logger, private readonly now: () => number = Date.now) {}

  get down(): boolean { return this.#downSince !== null; }

  /** A write or check failed; `what` says which ("node changes", "work packages", "check"). */
  failed(err: Error, what: string): void {
    this.#failures += 1;
    this.#lastError = err.message;
    if (this.#downSince !== null) return;
    this.#downSince = this.now();
    this.log.error({ ...errorFields(err), store: this.describe.location, failed: what },
      'store write failed: serving from memory, keeping the changes and retrying with backoff');
  }

  /** A write or check went through; ends an outage. */
  succeeded(what: string): void {
    if (this.#downSince === null) return;
    const downMs = this.now() - this.#downSince;
    this.#downSince = null;
    this.#lastError = null;
    this.log.info({ store: this.describe.location, down_ms: downMs, by: what }, 'store is back; pending changes are being written');
  }

  status(): StoreStatus {
    return { ...this.describe, state: this.#downSince === null ? 'up' : 'down', down_since: this.#downSince, last_error: this.#lastError, failures: this.#failures };
  }
}
