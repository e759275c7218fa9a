/**
 * Reconnect delays: exponential backoff with "full jitter" (AWS Architecture
 * Blog, "Exponential Backoff And Jitter"). After a broker restart every agent
 * of a site reconnects at once; drawing the whole delay at random spreads
 * them over the window instead of in synchronized waves.
 *
 * Pure: no timers, no clock; `random` is injectable so tests are exact.
 */
export interface BackoffPolicy {
  /** Upper bound of the first delay; the bound doubles per failed attempt. */
  minMs: number;
  /** The bound never grows past this. */
  maxMs: number;
}

/**
 * Delay before reconnect attempt `attempt + 1` (attempt 0 = first retry after
 * losing the connection): uniform in [1, min(maxMs, minMs * 2^attempt)].
 * Never 0 because mqtt.js reads `reconnectPeriod: 0` as "never reconnect".
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 52); // 2^53 already overflows any sane cap
  const ceiling = Math.min(policy.maxMs, policy.minMs * 2 ** exponent);
  return Math.max(1, Math.ceil(random() * ceiling));
}
