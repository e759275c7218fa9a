/**
 * Pages of the node list (`GET /federation/nodes?limit=&after=`): node ids
 * kept sorted, rebuilt only when a node is added or removed (a status or
 * heartbeat changes no position). A page is a binary search for the cursor
 * and a walk until `limit` matches: at 100,000 nodes a filtered page of 100
 * costs a walk over the ids in between, not a filter and sort of the fleet.
 */
import { compareNodeIds, matchesNodeFilter, type NodeFilter } from './node-filter.js';
import type { NodeRecord } from './registry.js';

export interface NodePage {
  nodes: NodeRecord[];
  /** The cursor of the next page (the last node id of this one), or null when nothing matching follows. */
  next: string | null;
}

export interface PageRequest { after?: string; limit: number }

interface IndexedRegistry {
  readonly membership: number;
  all(): Iterable<NodeRecord>;
  get(nodeId: string): NodeRecord | undefined;
}

export class NodeIndex {
  #ids: string[] = [];
  #membership = -1;

  constructor(private readonly registry: IndexedRegistry) {}

  page(filter: NodeFilter, req: PageRequest): NodePage {
    const ids = this.#sorted();
    const nodes: NodeRecord[] = [];
    let i = req.after === undefined ? 0 : firstAfter(ids, req.after);
    for (; i < ids.length && nodes.length < req.limit; i += 1) {
      const r = this.registry.get(ids[i]!);
      if (r && matchesNodeFilter(r, filter)) nodes.push(r);
    }
    return { nodes, next: nodes.length === req.limit && hasMatchFrom(ids, i, filter, this.registry) ? nodes.at(-1)!.node_id : null };
  }

  #sorted(): string[] {
    if (this.#membership !== this.registry.membership) {
      this.#ids = [...this.registry.all()].map((r) => r.node_id).sort(compareNodeIds);
      this.#membership = this.registry.membership;
    }
    return this.#ids;
  }
}

/** Index of the first id that sorts after `after` (which need not exist any more). */
function firstAfter(ids: readonly string[], after: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNodeIds(ids[mid]!, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether a matching node follows: `next` is null on the last page, not one empty page later. */
function hasMatchFrom(ids: readonly string[], from: number, filter: NodeFilter, registry: IndexedRegistry): boolean {
  for (let i = from; i < ids.length; i += 1) {
    const r = registry.get(ids[i]!);
    if (r && matchesNodeFilter(r, filter)) return true;
  }
  return false;
}

/** The same page over a list already filtered and sorted (an HA standby's snapshot). */
export function pageOfSorted(sorted: readonly NodeRecord[], req: PageRequest): NodePage {
  const start = req.after === undefined ? 0 : firstAfter(sorted.map((r) => r.node_id), req.after);
  const nodes = sorted.slice(start, start + req.limit);
  return { nodes, next: start + req.limit < sorted.length && nodes.length > 0 ? nodes.at(-1)!.node_id : null };
}
