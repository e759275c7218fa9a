/** Waiting in benchmarks: a sleep, and a poll until a condition holds (or a bound passes). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function pollUntil(cond: () => boolean, everyMs: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('benchmark condition not met in time');
    await sleep(everyMs);
  }
}

/**
 * Opens `n` devices named `<prefix>-<i>`, `inflight` at a time, as a fleet
 * boots: each slot takes the next id once its device is up. Failures are
 * counted, the first one kept.
 */
export async function bootFleet<T>(n: number, prefix: string, inflight: number, open: (id: string) => Promise<T>, into: T[]): Promise<{ errors: number; firstError: string | undefined }> {
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  async function slot(): Promise<void> {
    while (next < n) {
      const id = `${prefix}-${next++}`;
      try {
        into.push(await open(id));
      } catch (err) {
        errors += 1;
        firstError ??= (err as Error).message;
      }
    }
  }
  await Promise.all(Array.from({ length: inflight }, slot));
  return { errors, firstError };
}
