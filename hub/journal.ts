/**
 * What changed in the registry since the last write, by node id: the next
 * flush turns it into one change set for the store (hub/store/types.ts).
 * Ids, not copies: a node that changes ten times between two flushes is
 * written once, as it is then. A write that fails puts its ids back.
 */
import type { NodeChanges } from './store/types.js';
import type { NodeRecord } from './registry.js';

export class NodeJournal {
  /** Nodes whose record changed durably (registration, status...). */
  #upserted = new Set<string>();
  /** Nodes whose liveness alone moved (last_seen, load, running_wpks): may wait. */
  #liveness = new Set<string>();
  #removed = new Set<string>();

  /** `schedule` is told how soon the change must reach the store. */
  constructor(private readonly schedule: (urgency: 'durable' | 'liveness') => void) {}

  upserted(nodeId: string): void {
    this.#removed.delete(nodeId);
    this.#liveness.delete(nodeId);
    this.#upserted.add(nodeId);
    this.schedule('durable');
  }

  liveness(nodeId: string): void {
    if (this.#upserted.has(nodeId)) return; // the whole record goes anyway
    this.#liveness.add(nodeId);
    this.schedule('liveness');
  }

  removed(nodeId: string): void {
    this.#upserted.delete(nodeId);
    this.#liveness.delete(nodeId);
    this.#removed.add(nodeId);
    this.schedule('durable');
  }

  get empty(): boolean { return this.#upserted.size + this.#liveness.size + this.#removed.size === 0; }

  /** The pending changes, as the records are now; the journal starts empty again. */
  take(get: (nodeId: string) => NodeRecord | undefined): NodeChanges {
    const changes: NodeChanges = { upserted: [], removed: [...this.#removed], liveness: [] };
    for (const id of this.#upserted) {
      const r = get(id);
      if (r) changes.upserted.push(r);
    }
    for (const id of this.#liveness) {
      const r = get(id);
      if (r) changes.liveness.push({ node_id: id, last_seen: r.last_seen, load: r.load, running_wpks: r.running_wpks });
    }
    this.#upserted = new Set();
    this.#liveness = new Set();
    this.#removed = new Set();
    return changes;
  }

  /** A write failed: its changes are pending again (newer ones since keep their place). */
  putBack(changes: NodeChanges): void {
    for (const id of changes.removed) if (!this.#upserted.has(id)) this.#removed.add(id);
    for (const r of changes.upserted) if (!this.#removed.has(r.node_id)) this.#upserted.add(r.node_id);
    for (const l of changes.liveness) if (!this.#upserted.has(l.node_id) && !this.#removed.has(l.node_id)) this.#liveness.add(l.node_id);
  }
}
