/** What a benchmark device registers with. */
import type { Registration } from '../lib/wire.js';

export function registrationOf(nodeId: string): Registration {
  return { node_id: nodeId, capabilities: ['monitoring', 'basic-actions'], boot_id: `b-${nodeId}`, ts: Date.now(), heartbeat_interval_ms: 60_000, labels: { bench: 'storm' } };
}
