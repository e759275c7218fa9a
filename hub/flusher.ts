/**
 * Decides when the registry reaches disk. lowdb stringifies the whole dataset
 * on every write (10k nodes: ~39 ms of blocked event loop), so writes are
 * coalesced: a durable change (registration, status) is written within
 * `soonMs`, a liveness-only change (last_seen) within `lazyMs`, at most one
 * write is in flight, and the pause after a write grows with its cost so a
 * registration storm cannot turn into a write storm.
 */
import { EdgefedError } from '../lib/errors.js';

export interface FlusherOptions {
  /** Delay before writing a durable change. */
  soonMs: number;
  /** Delay before writing liveness-only changes. */
  lazyMs: number;
  /** The pause after a write is at least this many times the write's duration. */
  costFactor: number;
  /** After a failed write, the next waits this long, doubled per failure in a row... */
  retryMinMs: number;
  /** ...up to this: a store that is away is asked again this often. */
  retryMaxMs: number;
  onError: (err: Error) => void;
  onFlushed?: (durationMs: number) => void;
}

export const defaultFlusherOptions: Omit<FlusherOptions, 'onError'> = { soonMs: 50, lazyMs: 5000, costFactor: 8, retryMinMs: 100, retryMaxMs: 5000 };

export class Flusher {
  #timer: NodeJS.Timeout | undefined;
  #due = Infinity;
  #writing: Promise<void> | undefined;
  #dirty = false;
  /** Whether a pending change is durable (write soon) or liveness only (write lazily). */
  #durable = false;
  /** A pending change is waited on: write at the next turn. */
  #now = false;
  #notBefore = 0;
  /** Failed writes in a row: the retry backs off with them. */
  #failures = 0;
  #stopped = false;
  /** Callers waiting for their change to be on disk, settled by the next write that starts. */
  #waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];

  constructor(private readonly write: () => Promise<void>, private readonly opts: FlusherOptions) {}

  /**
   * `now`: something waits on this write to go out (a trigger is held until
   * its attempt is stored), so it is written at the next turn, still after
   * the pause that follows a write.
   */
  markDirty(kind: 'now' | 'durable' | 'liveness'): void {
    if (this.#stopped) return;
    this.#dirty = true;
    if (kind !== 'liveness') this.#durable = true;
    if (kind === 'now') this.#now = true;
    this.#schedulePending();
  }

  #schedulePending(): void {
    const delay = this.#now ? 0 : this.#durable ? this.opts.soonMs : this.opts.lazyMs;
    this.#schedule(Math.max(Date.now() + delay, this.#notBefore));
  }

  /**
   * Marks a durable change and resolves once a write that started after this
   * call is on disk (many callers share one write). Rejects if that write fails.
   */
  whenWritten(): Promise<void> {
    if (this.#stopped) return Promise.reject(new EdgefedError('EDGEFED_ERR_HUB_STOPPED', 'the store is closed'));
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.markDirty('durable');
    return done;
  }

  /** Writes now if anything is pending (and waits for a write in flight). */
  async flushNow(): Promise<void> {
    this.#clearTimer();
    // Another caller's write may be in flight: it resolves only after that one is on disk.
    while (this.#writing) await this.#writing;
    if (this.#dirty) await this.#run();
  }

  /** Stops scheduling; pending changes are written by a final flushNow(). */
  async stop(): Promise<void> {
    await this.flushNow();
    this.#stopped = true;
    this.#clearTimer();
  }

  /** Stops at once: nothing pending is written (an HA hub that lost its lease). */
  abandon(): void {
    this.#stopped = true;
    this.#clearTimer();
    const err = new EdgefedError('EDGEFED_ERR_HUB_STOPPED', 'the hub stepped down before this change was written');
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  #schedule(at: number): void {
    if (at >= this.#due) return;
    this.#clearTimer();
    this.#due = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#due = Infinity;
      void this.#tick();
    }, Math.max(0, at - Date.now()));
  }

  async #tick(): Promise<void> {
    if (this.#writing) {
      await this.#writing;
      if (this.#dirty && !this.#stopped) this.#schedulePending();
      return;
    }
    await this.#run();
  }

  async #run(): Promise<void> {
    this.#dirty = false;
    this.#durable = false;
    this.#now = false;
    const started = Date.now();
    const waiters = this.#waiters.splice(0);
    let ok = false;
    this.#writing = this.write().then(
      () => { ok = true; this.#failures = 0; for (const w of waiters) w.resolve(); },
      (err: Error) => {
        this.#failures += 1;
        this.#dirty = true;
        this.#durable = true;
        this.#now = true; // what waited on it still waits (the retry's backoff applies)
        for (const w of waiters) w.reject(err);
        this.opts.onError(err);
      },
    );
    await this.#writing;
    this.#writing = undefined;
    const took = Date.now() - started;
    this.#notBefore = Date.now() + Math.max(took * this.opts.costFactor, this.#retryDelay());
    if (ok) this.opts.onFlushed?.(took); // a failed write was reported by onError
    // A change that arrived during the write set its timer before this pause
    // was known, and #schedule only ever moves a timer earlier: drop it, or
    // every other write would skip its pause.
    this.#clearTimer();
    // Changes that arrived during the write keep their own urgency: a stream
    // of heartbeats must not turn into back-to-back writes.
    if (this.#dirty && !this.#stopped) this.#schedulePending();
  }

  /** 0 after a good write; after failures, retryMinMs doubling up to retryMaxMs. */
  #retryDelay(): number {
    if (this.#failures === 0) return 0;
    return Math.min(this.opts.retryMaxMs, this.opts.retryMinMs * 2 ** Math.min(this.#failures - 1, 30));
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = Infinity;
  }
}
