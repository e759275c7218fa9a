/** The WPK list's filter and counts, one definition for the hub and for an HA standby's view of the store. */
import { WPK_STATES, type WpkListFilter, type WpkRecord, type WpkState } from './types.js';

/** Newest first; `all` is oldest first (creation order). */
export function listWpks(all: readonly WpkRecord[], filter: WpkListFilter = {}): WpkRecord[] {
  const out: WpkRecord[] = [];
  const limit = filter.limit ?? Infinity;
  for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
    const w = all[i]!;
    if (filter.state && w.state !== filter.state) continue;
    if (filter.capability && w.capability !== filter.capability) continue;
    out.push(w);
  }
  return out;
}

export function countWpksByState(all: Iterable<WpkRecord>): Record<WpkState, number> {
  const counts = Object.fromEntries(WPK_STATES.map((s) => [s, 0])) as Record<WpkState, number>;
  for (const w of all) counts[w.state] += 1;
  return counts;
}
