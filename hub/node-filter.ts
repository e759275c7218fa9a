/** The node list's filter and order, one definition for the hub and for an HA standby's view of the store. */
import type { NodeRecord } from './registry.js';

/** What GET /federation/nodes filters on; combined with AND. */
export interface NodeFilter { capability?: string; status?: string; labels?: Record<string, string> }

const collator = new Intl.Collator('en', { numeric: true });

/** The node list's order: numeric-aware (`node-2` before `node-10`), as String#localeCompare('en', { numeric }) but ~10x faster. */
export const compareNodeIds = (a: string, b: string): number => collator.compare(a, b);

export function matchesNodeFilter(r: NodeRecord, filter: NodeFilter): boolean {
  if (filter.capability && !r.capabilities.includes(filter.capability)) return false;
  if (filter.status && r.status !== filter.status) return false;
  if (filter.labels && Object.entries(filter.labels).some(([k, v]) => r.labels[k] !== v)) return false;
  return true;
}

/** Matching nodes sorted by node id, numeric-aware (`node-2` before `node-10`). */
export function filterNodes(all: Iterable<NodeRecord>, filter: NodeFilter): NodeRecord[] {
  const out: NodeRecord[] = [];
  for (const r of all) if (matchesNodeFilter(r, filter)) out.push(r);
  return out.sort((a, b) => compareNodeIds(a.node_id, b.node_id));
}
