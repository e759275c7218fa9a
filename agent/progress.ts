/**
 * Progress reports, throttled: an action may call `ctx.progress()` in a tight
 * loop, but every report is an MQTT message to the hub. Leading and trailing
 * edge: the first report goes out at once, later ones within the interval
 * collapse into one sent at its end carrying the latest value, so a pause
 * after a burst still shows where the action got to. When the execution ends
 * a pending report is dropped (`cancel`): the final state supersedes it, and
 * a `running` right before `succeeded` would only be noise.
 */
import type { Clock, TimerHandle } from '../lib/clock.js';

export const PROGRESS_INTERVAL_MS = 250;

/** Monotonic time; a report's timer never keeps a process alive on its own (the action's own work does). */
const progressClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref() as unknown as TimerHandle,
  clearTimeout: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout | undefined),
};

export class ProgressThrottle {
  private lastSentAt = -Infinity;
  private lastSent: number | undefined;
  private pending: number | undefined;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly emit: (fraction: number) => void,
    private readonly intervalMs: number = PROGRESS_INTERVAL_MS,
    private readonly clock: Clock = progressClock,
  ) {}

  /** Accepts any number; NaN and infinities are ignored, the rest is clamped to 0..1. */
  report(fraction: number): void {
    if (typeof fraction !== 'number' || !Number.isFinite(fraction)) return;
    const value = Math.min(1, Math.max(0, fraction));
    const wait = this.lastSentAt + this.intervalMs - this.clock.now();
    if (wait <= 0 && this.timer === undefined) {
      this.send(value);
      return;
    }
    this.pending = value;
    if (this.timer === undefined) this.timer = this.clock.setTimeout(() => this.flush(), Math.max(0, wait));
  }

  cancel(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }

  private flush(): void {
    this.timer = undefined;
    const value = this.pending;
    this.pending = undefined;
    if (value !== undefined) this.send(value);
  }

  private send(value: number): void {
    if (value === this.lastSent) return; // the hub knows already
    this.lastSent = value;
    this.lastSentAt = this.clock.now();
    this.emit(value);
  }
}
