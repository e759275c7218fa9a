/**
 * What the layers above the hub (the HTTP API, the live feed, metrics, an
 * embedder's own server) may read and ask of it. The server layer is written
 * against this interface, never against the Hub's internals: the registry,
 * the counters object and the WPK engine stay the hub's own, so they can
 * change shape (or move to another store) without touching the server.
 */
import type { Logger } from '../lib/log.js';
import type { HttpHeartbeat, HttpRegistration } from '../lib/wire.js';
import type { HubCounters } from './counters.js';
import type { HubObservers } from './observe.js';
import type { RefusalReport } from './refusals.js';
import type { StoreStatus } from './store/health.js';
import type { NodePage, PageRequest } from './node-index.js';
import type { NodeFilter } from './node-filter.js';
import type { NodeRecord, NodeState } from './registry.js';
import type { WorkPackages } from './wpk/types.js';
import type { NodeStateView } from './state/service.js';
import type { StateObject } from '../lib/desired-state.js';

export type { NodeFilter } from './node-filter.js';

/** A deep, read-only copy of the hub's counters at one moment. */
export type CountersSnapshot = Readonly<HubCounters>;

export interface HubApi {
  /** Changes with every hub process: a client that sees it change knows the hub restarted. */
  readonly bootId: string;
  /** Epoch ms of the hub's creation. */
  readonly startedAt: number;
  /** Whether the hub's MQTT session is up. */
  readonly connected: boolean;
  /** Where the registry is written, or undefined when the embedder gave its own storage. */
  readonly registryFile: string | undefined;
  readonly log: Logger;
  /** Events to observe (dispatch latency, finished WPKs, flushes); nobody can veto them. */
  readonly events: HubObservers;
  /** Work packages: create, list, cancel. */
  readonly wpks: WorkPackages;
  /** Matching nodes, sorted by node id (numeric-aware). */
  nodes(filter?: NodeFilter): NodeRecord[];
  /** One page of the matching nodes, in the same order, after the cursor `after` (a node id). */
  nodePage(filter: NodeFilter, page: PageRequest): NodePage;
  /** Every node, unsorted: the cheap walk for a feed tick or a metrics scrape. */
  eachNode(): Iterable<NodeRecord>;
  node(nodeId: string): NodeRecord | undefined;
  countNodesByStatus(): Record<NodeState, number>;
  /** Whether the store takes writes now, and what it is (never a password). */
  storeStatus(): StoreStatus;
  counters(): CountersSnapshot;
  /** `POST /federation/register`: the same change as a retained registration over MQTT. */
  register(body: HttpRegistration): { record: NodeRecord; created: boolean };
  /** `POST /federation/nodes/:id/heartbeat`: the same change as an MQTT heartbeat; undefined for an unknown node. */
  heartbeat(nodeId: string, body: HttpHeartbeat): NodeRecord | undefined;
  /** `GET /federation/nodes/:id/state`: desired, reported, delta, in_sync; undefined for an unknown node. */
  nodeState(nodeId: string): NodeStateView | undefined;
  /** `PATCH /federation/nodes/:id/desired` (RFC 7386); throws StateRequestError (404 unknown node, 412 If-Match, 413 too large or deep). */
  patchDesired(nodeId: string, patch: StateObject, ifVersion?: number): NodeStateView;
  /** Nodes whose reported state lags their desired state. */
  countOutOfSync(): number;
  /** `DELETE /federation/nodes/:id`: removes the record and its retained topics; false for an unknown node. */
  removeNode(nodeId: string): boolean;
  /** Records a refusal made above the hub (an HTTP body): logged once, counted with the MQTT ones. */
  refuse(report: RefusalReport): void;
}
