/**
 * Runs a function at a wall-clock time (a token's expiry), however far away:
 * setTimeout cannot wait more than ~24.8 days, so a longer wait is re-armed
 * in steps. The timer is unref'd: a pending expiry never keeps a process alive.
 */

/** setTimeout's limit. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `fn` once at `epochS` (epoch seconds; at once if past). Returns the function that cancels it. */
export function atEpochSeconds(epochS: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = epochS * 1000 - Date.now();
    timer = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fn, Math.max(0, left));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}
