/**
 * The node registry as an in-memory model: records and the status rules of
 * the contract. No I/O here: every change is reported to one listener (the
 * hub's change sink, hub/changes.ts), which turns it into persistence,
 * counters, logs and WPK notices; this module only says what changed.
 */
import { nanoid } from 'nanoid';
import type { AgentInfo, HardwareInfo, Heartbeat, NodeStatus, Registration } from '../lib/wire.js';

import type { NodeState } from '../lib/states.js';
import type { NodeTwin } from './state/model.js';

export { NODE_STATES, type NodeState } from '../lib/states.js';

export interface NodeRecord {
  /** Registration id, stable across re-registrations of the same node_id. */
  id: string;
  node_id: string;
  endpoint: string | null;
  capabilities: string[];
  labels: Record<string, string>;
  agent: AgentInfo | null;
  hardware: HardwareInfo | null;
  heartbeat_interval_ms: number | null;
  max_concurrency: number | null;
  boot_id: string;
  /** First time this node_id registered (epoch ms). */
  registered_at: number;
  /** When the current registration was received (epoch ms). */
  updated_at: number;
  status: NodeState;
  /** Why the node is offline/stale/deregistered (`lost`, `shutdown`, `no_heartbeat`, `restored`...). */
  status_reason: string | null;
  /** Last time the hub saw the node alive (epoch ms), null if never. */
  last_seen: number | null;
  load: number | null;
  running_wpks: number | null;
  /** `ts` of the current registration payload: with boot_id, what tells a duplicate from a re-announce. */
  registration_ts: number;
  /** The latest `session` of an `online` status of this boot (null: none seen, or the node sends none). */
  session?: number | null;
  /**
   * Since when the node has let a trigger time out without accepting it: it
   * gets no new mode-one work until it shows life (a heartbeat, an `online`,
   * a live registration, any execution update). Null otherwise.
   */
  unresponsive_since?: number | null;
  /** Desired and reported state (hub/state/); null until either is first set. Absent in records stored before it existed. */
  twin?: NodeTwin | null;
}

/**
 * The registration payload a record was built from, re-published retained
 * after a broker lost its store. Rebuilt rather than stored: keeping both
 * doubled the registry file and the cost of every flush.
 */
export function registrationOf(r: NodeRecord): Registration {
  const reg: Registration = { node_id: r.node_id, capabilities: r.capabilities, boot_id: r.boot_id, ts: r.registration_ts };
  if (r.endpoint !== null) reg.endpoint = r.endpoint;
  if (Object.keys(r.labels).length > 0) reg.labels = r.labels;
  if (r.agent !== null) reg.agent = r.agent;
  if (r.hardware !== null) reg.hardware = r.hardware;
  if (r.heartbeat_interval_ms !== null) reg.heartbeat_interval_ms = r.heartbeat_interval_ms;
  if (r.max_concurrency !== null) reg.max_concurrency = r.max_concurrency;
  return reg;
}

/** What a change means for persistence: `durable` must reach disk soon, `liveness` may wait. */
export type ChangeKind = 'durable' | 'liveness' | 'none';

export type RegistrationOutcome = 'created' | 'updated' | 'rebirth' | 'duplicate' | 'older';
export type StatusOutcome = 'applied' | 'unknown_node' | 'older_session' | 'unchanged';

/** Sources of a message: `live` was just published; `replay` came from the broker's retained store. */
export interface Seen { now: number; live: boolean }

/** Statuses held for nodes not registered yet: retained replay has no order across topics. */
const MAX_EARLY_STATUSES = 10_000;

/** What changed in the registry, reported once per change (hub/changes.ts acts on it). */
export type NodeChange =
  | { kind: 'registered'; record: NodeRecord; outcome: 'created' | 'updated' | 'rebirth'; live: boolean }
  | { kind: 'deregistered'; record: NodeRecord }
  /** An online/offline status was applied (the Last Will among them). */
  | { kind: 'status'; record: NodeRecord; live: boolean }
  /** A stale or offline node showed life (a heartbeat, the same registration re-published). */
  | { kind: 'alive'; record: NodeRecord }
  /** Missed its heartbeats. */
  | { kind: 'stale'; record: NodeRecord }
  /** The record is gone: deregistered or offline past its retention, or removed by an operator. */
  | { kind: 'forgotten'; nodeId: string; why: 'retention' | 'removed' }
  /** Its desired or reported state moved (hub/state/). */
  | { kind: 'state'; record: NodeRecord }
  /** It let a trigger time out unaccepted (`unresponsive_since` set), or showed life again (cleared). */
  | { kind: 'unresponsive'; record: NodeRecord }
  /** Only last_seen, load or running_wpks moved. */
  | { kind: 'liveness'; record: NodeRecord };

export type NodeChangeListener = (change: NodeChange) => void;

export class Registry {
  readonly #nodes = new Map<string, NodeRecord>();
  readonly #early = new Map<string, { status: NodeStatus; seen: Seen }>();

  /** Raised whenever a node id is added or removed (not on a change of a record): what a sorted index of ids watches. */
  #membership = 0;

  constructor(private readonly changed: NodeChangeListener = () => undefined) {}

  get size(): number { return this.#nodes.size; }
  get membership(): number { return this.#membership; }
  get(nodeId: string): NodeRecord | undefined { return this.#nodes.get(nodeId); }
  all(): IterableIterator<NodeRecord> { return this.#nodes.values(); }

  /**
   * Loads records from the store. Liveness is not carried over: the hub
   * claims none it has not seen. Returns the nodes that were active, now
   * stale: a change the store should learn.
   */
  restore(records: Iterable<NodeRecord>): string[] {
    this.#nodes.clear();
    this.#membership += 1;
    const demoted: string[] = [];
    for (const r of records) {
      const restored = { ...r };
      if (restored.status === 'active') {
        restored.status = 'stale';
        restored.status_reason = 'restored';
        demoted.push(r.node_id);
      }
      this.#nodes.set(r.node_id, restored);
    }
    return demoted;
  }

  /**
   * A registration is a birth. A live one makes the node active; one replayed
   * from the broker's retained store is recorded but proves no liveness. The
   * same boot_id and ts as the stored one is a duplicate (e.g. the hub's own
   * re-publication coming back) and changes nothing.
   */
  applyRegistration(reg: Registration, seen: Seen): { outcome: RegistrationOutcome; record: NodeRecord } {
    const old = this.#nodes.get(reg.node_id);
    if (old && old.status !== 'deregistered' && old.boot_id === reg.boot_id) {
      if (old.registration_ts === reg.ts) return { outcome: 'duplicate', record: old };
      // Within one boot, ts orders the announcements: an older one is stale.
      if (reg.ts < old.registration_ts) return { outcome: 'older', record: old };
    }
    const alive = seen.live || (old !== undefined && old.status === 'active' && old.boot_id === reg.boot_id);
    const record: NodeRecord = {
      id: old?.id ?? `reg_${nanoid(16)}`,
      node_id: reg.node_id,
      endpoint: reg.endpoint ?? null,
      capabilities: [...reg.capabilities],
      labels: { ...(reg.labels ?? {}) },
      agent: reg.agent ?? null,
      hardware: reg.hardware ?? null,
      heartbeat_interval_ms: reg.heartbeat_interval_ms ?? null,
      max_concurrency: reg.max_concurrency ?? null,
      boot_id: reg.boot_id,
      registered_at: old?.registered_at ?? seen.now,
      updated_at: seen.now,
      status: alive ? 'active' : 'stale',
      status_reason: alive ? null : 'replayed',
      last_seen: alive ? seen.now : old?.last_seen ?? null,
      load: old?.boot_id === reg.boot_id ? old.load : null,
      running_wpks: old?.boot_id === reg.boot_id ? old.running_wpks : null,
      registration_ts: reg.ts,
      twin: old?.twin ?? null,
      session: old?.boot_id === reg.boot_id ? old.session ?? null : null,
      // A live registration is a sign of life; a replayed one keeps what was known.
      unresponsive_since: seen.live ? null : old?.unresponsive_since ?? null,
    };
    if (!old) this.#membership += 1;
    this.#nodes.set(reg.node_id, record);
    // A status seen before the registration belongs with a replay of both; a
    // live registration is newer than anything held, so the held one is dropped.
    if (seen.live) this.#early.delete(reg.node_id);
    else this.#applyEarlyStatus(reg.node_id);
    const outcome = !old ? 'created' : old.boot_id !== reg.boot_id ? 'rebirth' : 'updated';
    this.changed({ kind: 'registered', record, outcome, live: seen.live });
    return { outcome, record };
  }

  /** Replaces a node's desired/reported state (hub/state/ decides); undefined for an unknown node. */
  setTwin(nodeId: string, twin: NodeTwin): NodeRecord | undefined {
    const r = this.#nodes.get(nodeId);
    if (!r) return undefined;
    r.twin = twin;
    this.changed({ kind: 'state', record: r });
    return r;
  }

  /** An empty retained registration: the node leaves the federation (its record is kept, marked). */
  deregister(nodeId: string, now: number): NodeRecord | undefined {
    const r = this.#nodes.get(nodeId);
    if (!r || r.status === 'deregistered') return undefined;
    r.status = 'deregistered';
    r.status_reason = 'deregistered';
    r.updated_at = now;
    this.changed({ kind: 'deregistered', record: r });
    return r;
  }

  /** Status or Last Will. One of an older session (other boot_id) is ignored. */
  applyStatus(nodeId: string, status: NodeStatus, seen: Seen): StatusOutcome {
    const r = this.#nodes.get(nodeId);
    if (!r || r.status === 'deregistered') {
      this.#holdEarlyStatus(nodeId, status, seen);
      return 'unknown_node';
    }
    if (r.boot_id !== status.boot_id) return 'older_session';
    // Same boot, an older connection: on a broker cluster the will of a dead broker node can come
    // after the node reconnected to another one. It must not mark a live node lost.
    if (status.session !== undefined && typeof r.session === 'number' && status.session < r.session) return 'older_session';
    if (status.state === 'online' && status.session !== undefined && (typeof r.session !== 'number' || status.session > r.session)) {
      r.session = status.session;
      // Not a change by itself: it is written with the record's next change.
    }
    if (status.state === 'online') {
      // A replayed `online` is what the broker kept, not a sign of life now:
      // the hub claims no liveness it has not seen (a rebirth request follows).
      if (!seen.live) return 'unchanged';
      this.responsive(nodeId);
      r.last_seen = seen.now;
      if (r.status === 'active') return 'unchanged';
      r.status = 'active';
      r.status_reason = null;
      this.changed({ kind: 'status', record: r, live: seen.live });
      return 'applied';
    }
    const reason = status.reason ?? 'lost';
    if (r.status === 'offline' && r.status_reason === reason) return 'unchanged';
    r.status = 'offline';
    r.status_reason = reason;
    this.changed({ kind: 'status', record: r, live: seen.live });
    return 'applied';
  }

  /** The node let a trigger time out unaccepted: no new work for it until it shows life. */
  markUnresponsive(nodeId: string, now: number): void {
    const r = this.#nodes.get(nodeId);
    if (!r || typeof r.unresponsive_since === 'number') return;
    r.unresponsive_since = now;
    this.changed({ kind: 'unresponsive', record: r });
  }

  /** A sign of life (heartbeat, online, live registration, an execution update) clears `unresponsive_since`. */
  responsive(nodeId: string): void {
    const r = this.#nodes.get(nodeId);
    if (!r || typeof r.unresponsive_since !== 'number') return;
    r.unresponsive_since = null;
    this.changed({ kind: 'unresponsive', record: r });
  }

  /** A heartbeat refreshes liveness; a stale or offline node that beats is active again. */
  applyHeartbeat(nodeId: string, hb: Pick<Heartbeat, 'load' | 'running_wpks'>, now: number): ChangeKind | 'unknown_node' {
    const r = this.#nodes.get(nodeId);
    if (!r || r.status === 'deregistered') return 'unknown_node';
    this.responsive(nodeId);
    r.last_seen = now;
    if (hb.load !== undefined) r.load = hb.load;
    if (hb.running_wpks !== undefined) r.running_wpks = hb.running_wpks;
    if (r.status === 'active') {
      this.changed({ kind: 'liveness', record: r });
      return 'liveness';
    }
    r.status = 'active';
    r.status_reason = null;
    this.changed({ kind: 'alive', record: r });
    return 'durable';
  }

  /**
   * Marks stale every active node that declared a heartbeat interval and has
   * been silent for `missedBeats` intervals. Nodes without an interval rely on
   * their will alone, as in Sparkplug.
   */
  sweep(now: number, missedBeats = 3): NodeRecord[] {
    const changed: NodeRecord[] = [];
    for (const r of this.#nodes.values()) {
      if (r.status !== 'active' || r.heartbeat_interval_ms === null) continue;
      const silentFor = now - (r.last_seen ?? r.updated_at);
      if (silentFor > missedBeats * r.heartbeat_interval_ms) {
        r.status = 'stale';
        r.status_reason = 'no_heartbeat';
        changed.push(r);
        this.changed({ kind: 'stale', record: r });
      }
    }
    return changed;
  }

  #holdEarlyStatus(nodeId: string, status: NodeStatus, seen: Seen): void {
    this.#early.delete(nodeId);
    if (this.#early.size >= MAX_EARLY_STATUSES) {
      const oldest = this.#early.keys().next().value;
      if (oldest !== undefined) this.#early.delete(oldest);
    }
    this.#early.set(nodeId, { status, seen });
  }

  #applyEarlyStatus(nodeId: string): void {
    const early = this.#early.get(nodeId);
    if (!early) return;
    this.#early.delete(nodeId);
    this.applyStatus(nodeId, early.status, early.seen);
  }

  /**
   * Forgets nodes deregistered more than `retentionMs` ago. Their records are
   * kept a while for operators (who left, when); keeping them for ever would
   * let the registry, and the cost of every flush, grow without end.
   */
  pruneDeregistered(now: number, retentionMs: number, offlineRetentionMs = 0): string[] {
    const pruned: string[] = [];
    for (const r of this.#nodes.values()) {
      const gone = (r.status === 'deregistered' && now - r.updated_at > retentionMs)
        // Offline for longer than the operator keeps offline nodes (0: for ever), counted from when it was last seen.
        || (r.status === 'offline' && offlineRetentionMs > 0 && now - (r.last_seen ?? r.updated_at) > offlineRetentionMs);
      if (gone) {
        this.#drop(r.node_id, 'retention');
        pruned.push(r.node_id);
      }
    }
    return pruned;
  }

  /** An operator removes a node (`DELETE /federation/nodes/:id`): the record is gone; a later registration is a new node. */
  remove(nodeId: string): boolean {
    if (!this.#nodes.has(nodeId)) return false;
    this.#early.delete(nodeId);
    this.#drop(nodeId, 'removed');
    return true;
  }

  #drop(nodeId: string, why: 'retention' | 'removed'): void {
    this.#nodes.delete(nodeId);
    this.#membership += 1;
    this.changed({ kind: 'forgotten', nodeId, why });
  }

  countByStatus(): Record<NodeState, number> {
    const counts: Record<NodeState, number> = { active: 0, stale: 0, offline: 0, deregistered: 0 };
    for (const r of this.#nodes.values()) counts[r.status] += 1;
    return counts;
  }
}
