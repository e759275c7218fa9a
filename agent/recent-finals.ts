/**
 * The last update of every execution that ended recently, kept so they can be
 * replayed to a restarted hub. The broker acknowledges a final update as soon
 * as it has it, so once the outbox saw its PUBACK the agent forgets it; a hub
 * killed before its debounced write of wpks.json then comes back believing the
 * execution still runs, times it out and runs the work again elsewhere.
 * Replaying these finals after the hub's new birth closes that window; the hub
 * ignores the ones it already recorded (stale updates are counted, not logged).
 *
 * Bounded three ways, oldest dropped first: by age (`maxAgeMs`), by count, and
 * by bytes (a result may be up to 64 KiB; a constrained device must not keep
 * a thousand of those).
 */
import type { ExecutionState, ExecutionUpdate } from '../lib/wire.js';

export const DEFAULT_REPLAY_FINAL_MS = 10 * 60_000;
export const RECENT_FINALS_MAX = 1000;
/** Typical finals are well under 1 KiB; this only bites when results are large. */
export const RECENT_FINALS_MAX_BYTES = 2 * 1024 * 1024;

/**
 * Only outcomes of work that ran. A `rejected` is left out: the work never
 * started, so losing it costs a retry, not a second run, and a burst of
 * `busy` rejections must not push real outcomes out of the bound.
 */
const REPLAYED: ReadonlySet<ExecutionState> = new Set(['succeeded', 'failed', 'timed_out']);

export function isReplayedFinal(state: ExecutionState): boolean {
  return REPLAYED.has(state);
}

export interface RecentFinalsOptions {
  maxAgeMs: number;
  maxCount?: number;
  maxBytes?: number;
  /** Monotonic clock in ms (default performance.now): a wall-clock step at boot must not expire or keep everything. */
  now?: () => number;
}

interface Entry {
  readonly update: ExecutionUpdate;
  readonly bytes: number;
  readonly at: number;
}

export class RecentFinals {
  /** Insertion order is age order: the oldest is always first. */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly maxCount: number;
  private readonly maxBytes: number;
  private readonly now: () => number;

  constructor(private readonly opts: RecentFinalsOptions) {
    this.maxCount = opts.maxCount ?? RECENT_FINALS_MAX;
    this.maxBytes = opts.maxBytes ?? RECENT_FINALS_MAX_BYTES;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Remembers `update` if it is a final state of work that ran; others are ignored. */
  record(update: ExecutionUpdate): void {
    if (!isReplayedFinal(update.state) || this.opts.maxAgeMs === 0) return;
    const key = `${update.wpk_id}#${update.attempt}`;
    this.remove(key);
    // String length, not UTF-8 bytes: close enough for a memory bound and no second encoding.
    const entry: Entry = { update, bytes: JSON.stringify(update).length, at: this.now() };
    this.entries.set(key, entry);
    this.bytes += entry.bytes;
    this.prune();
  }

  /** The finals still within the bounds, oldest first. */
  recent(): ExecutionUpdate[] {
    this.prune();
    return [...this.entries.values()].map((e) => e.update);
  }

  get size(): number {
    return this.entries.size;
  }

  private prune(): void {
    const cutoff = this.now() - this.opts.maxAgeMs;
    for (const [key, entry] of this.entries) {
      if (entry.at >= cutoff && this.entries.size <= this.maxCount && this.bytes <= this.maxBytes) break;
      this.remove(key);
    }
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
