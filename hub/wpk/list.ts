/** The WPK list's filter and counts, one definition for the hub and for an HA standby's view of the store. */
import { FINAL_WPK_STATES, WPK_STATES, type ExecutionRecordState, type WpkCursor, type WpkListFilter, type WpkRecord, type WpkState } from './types.js';

/**
 * Newest first, in creation order (`all` is oldest first). A page's cursor
 * names the last WPK shown: the next page starts below it, wherever it is
 * now. If that WPK was forgotten meanwhile (retention), the page starts
 * below the WPKs created at or after its `created_at`.
 */
export function listWpks(all: readonly WpkRecord[], filter: WpkListFilter = {}): WpkRecord[] {
  const out: WpkRecord[] = [];
  const limit = filter.limit ?? Infinity;
  for (let i = below(all, filter.after) - 1; i >= 0 && out.length < limit; i--) {
    const w = all[i]!;
    if (filter.state && w.state !== filter.state) continue;
    if (filter.capability && w.capability !== filter.capability) continue;
    out.push(w);
  }
  return out;
}

/** The index the page ends before (exclusive), in oldest-first order. */
function below(all: readonly WpkRecord[], after: WpkCursor | undefined): number {
  if (!after) return all.length;
  const at = all.findIndex((w) => w.wpk_id === after.wpk_id);
  if (at >= 0) return at;
  const newer = all.findIndex((w) => w.created_at >= after.created_at);
  return newer >= 0 ? newer : all.length;
}

export function countWpksByState(all: Iterable<WpkRecord>): Record<WpkState, number> {
  const counts = Object.fromEntries(WPK_STATES.map((s) => [s, 0])) as Record<WpkState, number>;
  for (const w of all) counts[w.state] += 1;
  return counts;
}

/** Executions of the WPKs not finished yet, per state (a rollout's queued targets among them). */
export function countOpenExecutions(records: Iterable<WpkRecord>): Partial<Record<ExecutionRecordState, number>> {
  const counts: Partial<Record<ExecutionRecordState, number>> = {};
  for (const w of records) {
    if (FINAL_WPK_STATES.has(w.state)) continue;
    for (const e of w.executions) counts[e.state] = (counts[e.state] ?? 0) + 1;
  }
  return counts;
}
