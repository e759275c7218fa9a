/**
 * Waiting for one event in tests. Unlike `events.once`, an 'error' emitted
 * meanwhile does not reject: tests that provoke a disconnect expect errors
 * (ECONNRESET, EPIPE) before the 'close' they wait for. Bound the wait with
 * `withTimeout` from ./time.js.
 */

type OnceMethod = (event: string, listener: (...args: unknown[]) => void) => unknown;

/** Resolves with the arguments of the next `event` on `emitter` (any EventEmitter-like, mqtt.js clients included). */
export function nextEvent(emitter: { once: unknown }, event: string): Promise<unknown[]> {
  return new Promise((resolve) => {
    (emitter.once as OnceMethod).call(emitter, event, (...args: unknown[]) => resolve(args));
  });
}
