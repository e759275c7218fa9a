/**
 * Desired state (issue 16): the hub's side. Operators change a node's desired
 * state with a JSON merge patch (each change raises its version, published
 * retained so an offline node finds it on its next connect); nodes answer on
 * `reported` with the version they applied. The records live in the registry
 * (NodeRecord.twin), so each change goes through the registry's one change
 * listener: journalled for the store, logged, and seen by the live feed.
 */
import type { Logger } from '../../lib/log.js';
import { jsonEqual, mergePatch, stateBoundsProblem, type StateObject } from '../../lib/desired-state.js';
import { EdgefedError, type EdgefedErrorCode } from '../../lib/errors.js';
import { parseObject } from '../../lib/json.js';
import type { Topics } from '../../lib/topics.js';
import type { ReportedState } from '../../lib/wire.js';
import { validators } from '../../schemas/index.js';
import type { Publisher } from '../context.js';
import type { HubCounters } from '../counters.js';
import type { NodeRecord, Registry } from '../registry.js';
import { desiredMessage, emptyTwin, isInSync, twinDelta, withSync, type NodeTwin } from './model.js';

/** `GET /federation/nodes/:id/state`, and the answer of a patch. */
export interface NodeStateView {
  node_id: string;
  version: number;
  desired: StateObject;
  reported: StateObject | null;
  reported_version: number | null;
  reported_error: string | null;
  delta: StateObject;
  in_sync: boolean;
  /** The latest of the desired change and the report (epoch ms), null when neither happened. */
  updated_at: number | null;
}

/** A refused state request: its HTTP status and a stable code. */
export class StateRequestError extends EdgefedError {
  override readonly name = 'StateRequestError';
  constructor(readonly status: 404 | 412 | 413, code: EdgefedErrorCode, message: string) {
    super(code, message);
  }
}

export interface StateServiceDeps {
  topics: Topics;
  registry: Registry;
  out: Publisher;
  counters: HubCounters;
  log: Logger;
  now(): number;
}

const RETAINED_QOS1 = { qos: 1, retain: true } as const;

export class StateService {
  /** Nodes whose retained desired state the broker replayed as the hub has it, since the last (re)connect. */
  readonly #confirmed = new Set<string>();

  constructor(private readonly d: StateServiceDeps) {}

  view(nodeId: string): NodeStateView | undefined {
    const record = this.d.registry.get(nodeId);
    return record ? stateView(record) : undefined;
  }

  /**
   * Applies an RFC 7386 merge patch to the desired state. `ifVersion` makes it
   * conditional (If-Match). A patch that changes nothing raises no version.
   */
  patch(nodeId: string, patch: StateObject, ifVersion?: number): NodeStateView {
    const record = this.d.registry.get(nodeId);
    if (!record) throw new StateRequestError(404, 'EDGEFED_ERR_NODE_NOT_FOUND', `no node "${nodeId}" in the registry`);
    const twin = record.twin ?? emptyTwin(this.d.now());
    if (ifVersion !== undefined && ifVersion !== twin.version) {
      this.d.counters.state.precondition_failed += 1;
      this.d.log.info({ node_id: nodeId, if_version: ifVersion, version: twin.version }, 'desired state not changed: version mismatch');
      throw new StateRequestError(412, 'EDGEFED_ERR_VERSION_MISMATCH', `the desired state of "${nodeId}" is at version ${twin.version}, not ${ifVersion}; read it again (edgefed state show ${nodeId}) and retry`);
    }
    const desired = mergePatch(twin.desired, patch) as StateObject;
    const problem = stateBoundsProblem(desired);
    if (problem) throw new StateRequestError(413, 'EDGEFED_ERR_STATE_TOO_LARGE', `desired ${problem}; nothing was changed`);
    if (jsonEqual(desired, twin.desired) && record.twin) return stateView(record);
    const next = withSync({ ...twin, version: twin.version + 1, desired, desired_at: Math.max(this.d.now(), twin.desired_at + 1) });
    const updated = this.d.registry.setTwin(nodeId, next)!;
    this.d.counters.state.patches += 1;
    this.#publishDesired(nodeId, next);
    return stateView(updated);
  }

  /** A node's `reported` message, admitted. Older versions than the recorded one, and versions never desired, are ignored. */
  onReported(nodeId: string, report: ReportedState | null): void {
    const record = this.d.registry.get(nodeId);
    if (!record) { this.d.counters.ignored.unknown_node += 1; return; }
    if (report === null) return; // cleared (a removed node's topics): nothing to record
    const twin = record.twin ?? emptyTwin(this.d.now());
    if ((twin.reported_version !== null && report.version < twin.reported_version) || report.version > twin.version) {
      this.d.counters.state.ignored_reports += 1;
      this.d.log.debug({ node_id: nodeId, version: report.version, reported_version: twin.reported_version, desired_version: twin.version }, 'ignored a reported state of another version');
      return;
    }
    const error = report.error ?? null;
    if (report.version === twin.reported_version && error === twin.reported_error && jsonEqual(report.state, twin.reported)) return;
    this.d.registry.setTwin(nodeId, withSync({ ...twin, reported: report.state, reported_version: report.version, reported_at: this.d.now(), reported_error: error }));
  }

  /**
   * A `desired` message seen on the broker: the hub's own, replayed or
   * echoed, or (auth off) someone else's. A retained replay that matches is
   * noted for the resync; any other copy the hub did not publish is replaced
   * by the hub's own (or cleared when the hub has none).
   */
  onDesiredSeen(nodeId: string, payload: Buffer, retained: boolean): void {
    const twin = this.d.registry.get(nodeId)?.twin ?? null;
    const seen = readDesired(payload);
    const ours = twin !== null && twin.version > 0 ? desiredMessage(twin) : undefined;
    if (ours && seen && seen.version === ours.version && seen.ts === ours.ts) {
      if (retained) this.#confirmed.add(nodeId);
      return;
    }
    if (!ours) {
      if (payload.length > 0) this.#replace(nodeId, '', 'a desired state the hub never set');
      return;
    }
    // A live copy of a lower version is the echo of an earlier publication of ours, already superseded.
    if (!retained && seen && seen.version < ours.version) return;
    this.#replace(nodeId, JSON.stringify(ours), 'a desired state other than the hub\'s');
  }

  /** A new broker session begins: what it replays is noted afresh. */
  onConnecting(): void {
    this.#confirmed.clear();
  }

  /** After the broker replayed its retained store: publishes every desired state it did not hold (a broker that lost its store). */
  republishMissing(): number {
    let count = 0;
    for (const record of this.d.registry.all()) {
      const twin = record.twin;
      if (!twin || twin.version === 0 || this.#confirmed.has(record.node_id)) continue;
      this.#publishDesired(record.node_id, twin);
      count += 1;
    }
    this.d.counters.state.republished += count;
    return count;
  }

  /** A node left the registry for good: its retained desired and reported topics are cleared. */
  forget(nodeId: string): void {
    this.#confirmed.delete(nodeId);
    this.d.out.publish(this.d.topics.desired(nodeId), '', RETAINED_QOS1);
    this.d.out.publish(this.d.topics.reported(nodeId), '', RETAINED_QOS1);
  }

  /** Nodes out of sync (metrics, dashboard). */
  countOutOfSync(): number {
    let n = 0;
    for (const record of this.d.registry.all()) if (!isInSync(record.twin ?? null)) n += 1;
    return n;
  }

  #publishDesired(nodeId: string, twin: NodeTwin): void {
    this.d.out.publish(this.d.topics.desired(nodeId), JSON.stringify(desiredMessage(twin)), RETAINED_QOS1);
  }

  #replace(nodeId: string, payload: string, what: string): void {
    this.d.counters.state.republished += 1;
    this.d.log.warn({ node_id: nodeId }, `replaced ${what} on the broker`);
    this.d.out.publish(this.d.topics.desired(nodeId), payload, RETAINED_QOS1);
  }
}

function readDesired(payload: Buffer): { version: number; ts: number } | undefined {
  if (payload.length === 0) return undefined;
  const parsed = parseObject(payload);
  if (!parsed.ok) return undefined;
  const checked = validators.desiredState(parsed.value);
  return checked.ok ? checked.value : undefined;
}

export function stateView(record: NodeRecord): NodeStateView {
  const twin = record.twin ?? null;
  const times = [twin && twin.version > 0 ? twin.desired_at : null, twin?.reported_at ?? null].filter((t): t is number => t !== null);
  return {
    node_id: record.node_id,
    version: twin?.version ?? 0,
    desired: twin?.desired ?? {},
    reported: twin?.reported ?? null,
    reported_version: twin?.reported_version ?? null,
    reported_error: twin?.reported_error ?? null,
    delta: twinDelta(twin),
    in_sync: isInSync(twin),
    updated_at: times.length > 0 ? Math.max(...times) : null,
  };
}
