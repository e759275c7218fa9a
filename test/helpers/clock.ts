/**
 * A Clock (lib/clock.ts) that moves only when a test says so: `advance(ms)`
 * fires every timer that falls due on the way, in due order (ties in the
 * order they were set), with `now()` at each timer's due time, including
 * timers those callbacks set within the window. Nothing here touches real
 * timers, so a test on it never sleeps and never leaves a handle open.
 */
import type { Clock, TimerHandle } from '../../lib/clock.js';

interface Timer { id: number; at: number; fn: () => void }

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, Timer>();

  constructor(start = 1_800_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn });
    return { id } as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) this.#timers.delete((handle as unknown as { id: number }).id);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing due timers one by one; returns how many fired. */
  advance(ms: number): number {
    if (ms < 0) throw new Error('a clock does not go back');
    const until = this.#now + ms;
    let fired = 0;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.#timers.values()) if (t.at <= until && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      if (!next) break;
      this.#timers.delete(next.id);
      this.#now = next.at;
      next.fn();
      fired += 1;
      if (fired > 100_000) throw new Error('FakeClock: more than 100,000 timers in one advance (a timer loop at 0 ms?)');
    }
    this.#now = until;
    return fired;
  }

  /** Moves time to an absolute epoch ms (not backwards). */
  advanceTo(at: number): number {
    return this.advance(at - this.#now);
  }
}
