/**
 * Where work goes: the healthy nodes that may run a WPK, and among them the
 * least loaded. The hub's own in-flight count is the first measure (a WPK
 * counts on its node from dispatch, long before a heartbeat could report it),
 * the node's reported load the second, and ties go to the node picked least
 * recently (round-robin). No node is given more than its `max_concurrency`.
 */
import type { NodeRecord, Registry } from '../registry.js';
import type { WpkRecord } from './types.js';

export interface PlacementOptions {
  /** Slots of a node that did not declare `max_concurrency` (a plain device). */
  defaultConcurrency: number;
}

/** Reported load is rounded to this step so that noise does not defeat round-robin. */
const LOAD_STEP = 0.1;

export class Placement {
  /** node_id -> keys (`wpk_id#attempt`) of executions holding a slot there. */
  readonly #inFlight = new Map<string, Set<string>>();
  readonly #lastPicked = new Map<string, number>();
  /** Nodes that answered `busy`: no new work until then (epoch ms). */
  readonly #busyUntil = new Map<string, number>();
  /**
   * Active nodes per capability, so a dispatch looks at the nodes that could
   * take it rather than the whole registry (that scan was 15 % of the hub at
   * full throughput). Rebuilt on the next pick after any node change.
   */
  #active: Map<string, NodeRecord[]> | undefined;
  #picks = 0;

  constructor(private readonly registry: Registry, private readonly opts: PlacementOptions) {}

  /** A node's status, session or description changed (the registry may hold a new record for it). */
  invalidate(): void {
    this.#active = undefined;
  }

  #activeWith(capability: string): readonly NodeRecord[] {
    if (!this.#active) {
      const index = new Map<string, NodeRecord[]>();
      for (const node of this.registry.all()) {
        if (node.status !== 'active') continue;
        for (const cap of node.capabilities) {
          const list = index.get(cap);
          if (list) list.push(node);
          else index.set(cap, [node]);
        }
      }
      this.#active = index;
    }
    return this.#active.get(capability) ?? [];
  }

  capacity(node: NodeRecord): number {
    return node.max_concurrency ?? this.opts.defaultConcurrency;
  }

  load(nodeId: string): number {
    return this.#inFlight.get(nodeId)?.size ?? 0;
  }

  hasRoom(node: NodeRecord, now: number): boolean {
    return this.load(node.node_id) < this.capacity(node) && !this.#resting(node.node_id, now);
  }

  /** A node said it is busy (it runs more than the hub knows of): give it a rest. */
  rest(nodeId: string, until: number): void {
    this.#busyUntil.set(nodeId, until);
  }

  /** Nodes whose rest is over, now free to take work again. */
  rested(now: number): string[] {
    const done: string[] = [];
    for (const [id, until] of this.#busyUntil) if (until <= now) { this.#busyUntil.delete(id); done.push(id); }
    return done;
  }

  #resting(nodeId: string, now: number): boolean {
    const until = this.#busyUntil.get(nodeId);
    return until !== undefined && until > now;
  }

  /** Keys of the executions holding a slot on this node. */
  keysOf(nodeId: string): Iterable<string> {
    return this.#inFlight.get(nodeId) ?? [];
  }

  hold(nodeId: string, key: string): void {
    let keys = this.#inFlight.get(nodeId);
    if (!keys) this.#inFlight.set(nodeId, (keys = new Set()));
    keys.add(key);
  }

  release(nodeId: string, key: string): void {
    const keys = this.#inFlight.get(nodeId);
    if (!keys) return;
    keys.delete(key);
    if (keys.size === 0) this.#inFlight.delete(nodeId);
  }

  /** Whether a node may run this WPK at all: active, capable, and matching the selectors. */
  eligible(w: WpkRecord, node: NodeRecord): boolean {
    return node.status === 'active' && selects(w, node);
  }

  /** Whether a registered node (in any state but deregistered) matches the WPK's capability and selectors. */
  matches(w: WpkRecord, node: NodeRecord): boolean {
    return node.status !== 'deregistered' && selects(w, node);
  }

  /**
   * The node for the next attempt of a mode-`one` WPK, or undefined when no
   * eligible node has a free slot. A node that rejected this WPK is not asked
   * again; nodes that tried it otherwise are taken only when no other can.
   */
  pick(w: WpkRecord, now: number): NodeRecord | undefined {
    // This runs once per dispatch over every node: no allocation per node.
    const tried = w.executions.length > 0 ? new Set(w.executions.map((e) => e.node_id)) : undefined;
    const refused = w.executions.length > 0 ? rejectedBy(w) : undefined;
    let best: NodeRecord | undefined;
    const bestKey: Key = [0, 0, 0, 0, 0];
    const key: Key = [0, 0, 0, 0, 0];
    for (const node of this.#activeWith(w.capability)) {
      // A node that let a trigger time out unaccepted gets no new work until it shows life (registry.ts).
      if (!this.eligible(w, node) || refused?.has(node.node_id) || typeof node.unresponsive_since === 'number') continue;
      const inFlight = this.load(node.node_id);
      const capacity = this.capacity(node);
      if (inFlight >= capacity || this.#resting(node.node_id, now)) continue;
      key[0] = tried?.has(node.node_id) ? 1 : 0;
      // A node seen beating lately before one whose liveness nobody knows (no heartbeat declared).
      key[1] = livenessKnown(node, now) ? 0 : 1;
      key[2] = inFlight / capacity;
      key[3] = Math.round((node.load ?? 0) / LOAD_STEP);
      key[4] = this.#lastPicked.get(node.node_id) ?? -1;
      if (best === undefined || less(key, bestKey)) {
        best = node;
        for (let i = 0; i < 5; i++) bestKey[i] = key[i]!;
      }
    }
    if (best) this.#lastPicked.set(best.node_id, ++this.#picks);
    return best;
  }

  /** Whether some eligible node (busy or not) has not rejected this WPK: worth waiting for. */
  anyoneLeft(w: WpkRecord): boolean {
    const refused = rejectedBy(w);
    for (const node of this.#activeWith(w.capability)) if (this.eligible(w, node) && !refused.has(node.node_id)) return true;
    return false;
  }

}

/** The WPK's capability and selectors (`nodes`, `labels`), whatever the node's status. */
function selects(w: WpkRecord, node: NodeRecord): boolean {
  if (!node.capabilities.includes(w.capability)) return false;
  if (w.nodes !== null && !w.nodes.includes(node.node_id)) return false;
  if (w.labels !== null) {
    for (const [k, v] of Object.entries(w.labels)) if (node.labels[k] !== v) return false;
  }
  return true;
}

/** A rejection whose error starts with `busy` is passing: the node may be asked again later. */
export const isBusy = (error: string | null): boolean => error !== null && /^busy\b/i.test(error);

/** Nodes that refused this WPK for good (not merely busy). */
function rejectedBy(w: WpkRecord): Set<string> {
  return new Set(w.executions.filter((e) => e.state === 'rejected' && !isBusy(e.error)).map((e) => e.node_id));
}

/** Sort key of a candidate: [tried before, share of slots in use, reported load step, last picked]. */
type Key = [number, number, number, number, number];

/** The node declared a heartbeat interval and beat within the last three. */
function livenessKnown(node: NodeRecord, now: number): boolean {
  return node.heartbeat_interval_ms !== null && node.last_seen !== null && now - node.last_seen <= 3 * node.heartbeat_interval_ms;
}

function less(a: Key, b: Key): boolean {
  for (let i = 0; i < 5; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]!;
  }
  return false;
}
