/**
 * Dispatch activity per second over the last minutes: what the dashboard
 * charts. It records from the hub's start, so a page opened now shows the
 * recent past, and costs one array slot per second, whatever the rate.
 */
import type { HubObservers } from '../../hub/observe.js';
import type { ActivityPoint } from '../../lib/api.js';
import { FEED_SERIES_WINDOW_MS } from '../../lib/limits.js';

export type { ActivityPoint } from '../../lib/api.js';

export interface ActivityOptions {
  /** Seconds kept (default 300: five minutes). */
  keepSeconds?: number;
  /** Latency samples kept per second for its percentiles; beyond it, a uniform sample (default 2048). */
  maxSamplesPerSecond?: number;
  now?: () => number;
}

interface Open { t: number; dispatched: number; finished: number; samples: number[]; seen: number }

export class ActivitySeries {
  readonly #points: ActivityPoint[] = [];
  readonly #keep: number;
  readonly #maxSamples: number;
  readonly #now: () => number;
  #open: Open;

  constructor(observers: HubObservers, opts: ActivityOptions = {}) {
    this.#keep = opts.keepSeconds ?? FEED_SERIES_WINDOW_MS / 1000;
    this.#maxSamples = opts.maxSamplesPerSecond ?? 2048;
    this.#now = opts.now ?? Date.now;
    this.#open = emptySecond(secondOf(this.#now()));
    observers.triggered.add(() => { this.#current().dispatched += 1; });
    observers.wpkFinished.add(() => { this.#current().finished += 1; });
    observers.dispatchAnswered.add((ms) => this.#sample(ms));
  }

  /** Closed seconds, oldest first (the second in progress is not included). */
  points(): ActivityPoint[] {
    this.#current();
    return [...this.#points];
  }

  /** The last closed second, or undefined before the first one closed. */
  last(): ActivityPoint | undefined {
    this.#current();
    return this.#points.at(-1);
  }

  #sample(ms: number): void {
    const open = this.#current();
    open.seen += 1;
    if (open.samples.length < this.#maxSamples) {
      open.samples.push(ms);
      return;
    }
    // Reservoir sampling: every answer of the second has the same chance to be kept.
    const slot = Math.floor(Math.random() * open.seen);
    if (slot < this.#maxSamples) open.samples[slot] = ms;
  }

  /** The second in progress, closing the ones that ended (quiet seconds become zero points). */
  #current(): Open {
    const now = secondOf(this.#now());
    if (now === this.#open.t) return this.#open;
    this.#close(this.#open);
    // A hub quiet for longer than the window needs no run of empty points.
    const from = Math.max(this.#open.t + 1000, now - this.#keep * 1000);
    for (let t = from; t < now; t += 1000) this.#close(emptySecond(t));
    this.#open = emptySecond(now);
    return this.#open;
  }

  #close(open: Open): void {
    const sorted = open.samples.sort((a, b) => a - b);
    this.#points.push({
      t: open.t,
      dispatched: open.dispatched,
      finished: open.finished,
      latency_p50_ms: percentile(sorted, 0.5),
      latency_p95_ms: percentile(sorted, 0.95),
    });
    if (this.#points.length > this.#keep) this.#points.splice(0, this.#points.length - this.#keep);
  }
}

function secondOf(ms: number): number {
  return ms - (ms % 1000);
}

function emptySecond(t: number): Open {
  return { t, dispatched: 0, finished: 0, samples: [], seen: 0 };
}

/** Nearest-rank percentile of sorted samples, rounded to 0.01 ms. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return Math.round(sorted[rank]! * 100) / 100;
}
