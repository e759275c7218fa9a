/**
 * prom-client's default process and Node.js metrics (CPU, memory, event-loop
 * lag, GC), registered once per process: each registration enables an
 * event-loop monitor and a GC observer that are never released, so a hub
 * per test must not make one each.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

let shared: Registry | undefined;

export function processRegistry(): Registry {
  if (!shared) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}
