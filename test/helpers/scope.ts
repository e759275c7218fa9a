import { withTimeout } from './time.js';

/**
 * Per-test teardown. A test registers a cleanup right after it opens a handle
 * (broker, client, socket); `bounded()` runs them all, newest first, whether
 * the test passed, failed or timed out, so a failing test cannot leave a
 * handle that stops the process from exiting.
 */

export type Cleanup = () => unknown;

export class Scope {
  private readonly cleanups: Cleanup[] = [];

  /** Registers `cleanup` to run at the end of the test. */
  defer(cleanup: Cleanup): void {
    this.cleanups.push(cleanup);
  }

  /** Runs every cleanup (each bounded by `timeoutMs`); rethrows the first failure after all ran. */
  async close(timeoutMs = 2000): Promise<void> {
    const failures: unknown[] = [];
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        await withTimeout(Promise.resolve().then(cleanup), timeoutMs, 'cleanup');
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  }
}

export interface BoundedOptions {
  /** Bound on the test body (default 5000 ms); cleanups get their own bound. */
  timeoutMs?: number;
  /** Named in the timeout error. */
  label?: string;
}

/**
 * Wraps a test body for uvu: gives it a fresh Scope, bounds its time, and
 * always closes the scope. Usage: `test('name', bounded(async (scope) => {...}))`.
 */
export function bounded(body: (scope: Scope) => Promise<void>, options: BoundedOptions = {}): () => Promise<void> {
  const { timeoutMs = 5000, label = 'test' } = options;
  return async () => {
    const scope = new Scope();
    const outcome = await withTimeout(body(scope), timeoutMs, label).then(
      () => ({ failed: false as const }),
      (error: unknown) => ({ failed: true as const, error }),
    );
    // A cleanup failure must not hide the test's own failure, which came first.
    const closing = scope.close();
    if (outcome.failed) {
      await closing.catch(() => undefined);
      throw outcome.error;
    }
    await closing;
  };
}
