/** The WPK list's filter and counts, one definition for the hub and for an HA standby's view of the store. */
import { WPK_STATES, type WpkCursor, type WpkListFilter, type WpkRecord, type WpkState } from './types.js';

/**
 * Newest first: by `created_at`, then `wpk_id`, both descending (a total
 * order, so a page's cursor stays valid while WPKs come and go). `all` is
 * oldest first (creation order), which is nearly that order already.
 */
export function listWpks(all: readonly WpkRecord[], filter: WpkListFilter = {}): WpkRecord[] {
  const limit = filter.limit ?? Infinity;
  const matches: WpkRecord[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const w = all[i]!;
    if (filter.state && w.state !== filter.state) continue;
    if (filter.capability && w.capability !== filter.capability) continue;
    if (filter.after && compareNewestFirst(w, filter.after) <= 0) continue;
    matches.push(w);
  }
  // Creation order breaks only within one millisecond (or after a clock step): a sort of what matched.
  return matches.sort(compareNewestFirst).slice(0, limit);
}

/** < 0 when `a` comes before `b` in the list (newer, or as new with a greater id). */
export function compareNewestFirst(a: WpkCursor, b: WpkCursor): number {
  if (a.created_at !== b.created_at) return b.created_at - a.created_at;
  return a.wpk_id === b.wpk_id ? 0 : a.wpk_id > b.wpk_id ? -1 : 1;
}

export function countWpksByState(all: Iterable<WpkRecord>): Record<WpkState, number> {
  const counts = Object.fromEntries(WPK_STATES.map((s) => [s, 0])) as Record<WpkState, number>;
  for (const w of all) counts[w.state] += 1;
  return counts;
}
