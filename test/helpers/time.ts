/**
 * Time bounds for tests: uvu has no timeouts, and one hung promise or open
 * handle stalls the whole run. Every timer here is cleared on settle, so the
 * helpers themselves never keep the process alive.
 */

/** Settles like `promise`, or rejects with "<label> timed out after <ms> ms". */
export function withTimeout<T>(promise: PromiseLike<T>, ms: number, label = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

export interface WaitForOptions {
  /** Give up after this long (default 2000 ms). */
  timeoutMs?: number;
  /** Poll period (default 10 ms). */
  intervalMs?: number;
  /** Named in the timeout error (default "condition"). */
  label?: string;
}

/**
 * Polls `fn` until it returns a truthy value (sync or async) and resolves
 * with that value; rejects on timeout with the last error `fn` threw, if any.
 */
export async function waitFor<T>(
  fn: () => T | PromiseLike<T>,
  { timeoutMs = 2000, intervalMs = 10, label = 'condition' }: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`${label} not met within ${timeoutMs} ms${cause}`, { cause: lastError });
    }
    await sleep(intervalMs);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
