/**
 * Time as a dependency: what reads the time or schedules work takes a Clock,
 * so tests can drive it with a fake one (test/helpers/clock.ts) instead of
 * sleeping. Production code uses `systemClock`.
 */

declare const timerBrand: unique symbol;
/** An opaque handle from `Clock.setTimeout`, only good for the same clock's `clearTimeout`. */
export interface TimerHandle { readonly [timerBrand]: true }

export interface Clock {
  /** Milliseconds: epoch time from `systemClock`; a clock kept only for intervals may be monotonic. */
  now(): number;
  /** Calls `fn` once, `ms` from now. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as TimerHandle,
  clearTimeout: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout | undefined),
};
