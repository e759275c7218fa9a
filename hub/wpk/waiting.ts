/**
 * Open WPKs waiting for a node (or a free slot), per capability, oldest
 * first: what a node that becomes available is offered, in that order.
 */
import type { WpkRecord } from './types.js';

export class WaitingList {
  readonly #byCapability = new Map<string, Set<WpkRecord>>();
  /** Creation order of the WPKs this process knows: what "oldest first" means. */
  readonly #age = new WeakMap<WpkRecord, number>();
  #created = 0;

  /** Called once per WPK, in creation order (restored ones first). */
  born(w: WpkRecord): void {
    this.#age.set(w, ++this.#created);
  }

  of(capability: string): Iterable<WpkRecord> | undefined {
    return this.#byCapability.get(capability);
  }

  add(w: WpkRecord): void {
    const set = this.#byCapability.get(w.capability);
    if (!set) return void this.#byCapability.set(w.capability, new Set([w]));
    if (set.has(w)) return;
    if (w.executions.length === 0) return void set.add(w); // new: the youngest
    // Back to waiting (its node was lost, or rejected it busy): it keeps its
    // place by age, oldest first, rather than queueing behind newer work.
    const age = this.#age.get(w) ?? 0;
    const ordered = new Set<WpkRecord>();
    for (const x of set) {
      if (!ordered.has(w) && (this.#age.get(x) ?? 0) > age) ordered.add(w);
      ordered.add(x);
    }
    ordered.add(w);
    this.#byCapability.set(w.capability, ordered);
  }

  remove(w: WpkRecord): void {
    const set = this.#byCapability.get(w.capability);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.#byCapability.delete(w.capability);
  }
}
