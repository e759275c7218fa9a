/**
 * The HTTP API's answers and the live feed's events, as types: the contract
 * of docs/api.md for the CLI, the dashboard (JSDoc `import('../lib/api.js')`)
 * and programs. They are not the hub's storage records (hub/registry.ts,
 * hub/wpk/types.ts): server/http/views.ts and server/feed/views.ts map a
 * record to its answer field by field, so a record can change without
 * changing the API. Type-only, apart from the state lists in lib/states.ts.
 * Field names are snake_case; times are epoch milliseconds.
 */
import type { ExecutionRecordState, NodeState, WpkState } from './states.js';
import type { AgentInfo, HardwareInfo, HttpAbortCriterion, HttpRollout, RefusalCode } from './wire.js';

export type { ExecutionRecordState, NodeState, WpkState } from './states.js';

/** `GET /federation/nodes/:id`, and each node of `GET /federation/nodes`. */
export interface ApiNode {
  /** Registration id (`reg_` + 16 characters), stable across re-registrations of the same node_id. */
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
  registered_at: number;
  updated_at: number;
  status: NodeState;
  /** `null` when active, else `no_heartbeat`, `restored`, `replayed`, `lost`, `shutdown` or `deregistered`. */
  status_reason: string | null;
  last_seen: number | null;
  load: number | null;
  running_wpks: number | null;
  /** The `ts` of the current registration payload. */
  registration_ts: number;
  /** Desired state: its version (0: never set), whether the node reported it applied, and its error if applying failed. */
  state_version: number;
  in_sync: boolean;
  state_error: string | null;
  /** Since when the node has let a trigger time out unaccepted (no new work for it until it shows life), else null. */
  unresponsive_since: number | null;
}

/** `GET /federation/nodes/:id/state`, and the answer of `PATCH /federation/nodes/:id/desired`. */
export interface ApiNodeState {
  node_id: string;
  /** Raised by one with every change of `desired`; 0 before any. */
  version: number;
  desired: Record<string, unknown>;
  /** What the node last reported, null before its first report. */
  reported: Record<string, unknown> | null;
  /** The desired version that report answers. */
  reported_version: number | null;
  /** Why the node failed to apply `reported_version`, else null. */
  reported_error: string | null;
  /** The desired keys whose reported value differs (nested objects compared deeply). */
  delta: Record<string, unknown>;
  /** The node reported the current version, without error, and `delta` is empty. */
  in_sync: boolean;
  /** The latest desired change or report (epoch ms); null when neither happened. */
  updated_at: number | null;
}

/**
 * `GET /federation/nodes`: `count` is the number of nodes in this answer.
 * With `limit`, `next` is the cursor of the next page (pass it as `after`),
 * null on the last; without `limit` the list is whole and `next` is null.
 */
export interface ApiNodeList { count: number; nodes: ApiNode[]; next: string | null }

/** `POST /federation/register` (201 new, 200 re-registration). */
export interface ApiRegistered { status: 'registered'; registration_id: string; node_id: string; boot_id: string }

/** `POST /federation/nodes/:id/heartbeat`. */
export interface ApiHeartbeatAnswer { status: NodeState; last_seen: number | null }

/** One node's run of one attempt of a work package. */
export interface ApiExecution {
  node_id: string;
  attempt: number;
  state: ExecutionRecordState;
  boot_id: string;
  /** 0 to 1, or null. */
  progress: number | null;
  result: Record<string, unknown> | null;
  error: string | null;
  dispatched_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

/** Every work package endpoint answers this (`edgefed wpk show --json` prints it). */
export interface ApiWpk {
  wpk_id: string;
  state: WpkState;
  capability: string;
  action: string;
  mode: 'one' | 'all';
  params: Record<string, unknown>;
  /** Only these nodes may run it; null: any node of the capability. */
  nodes: string[] | null;
  /** Only nodes with all these labels; null: no label rule. */
  labels: Record<string, string> | null;
  timeout_ms: number;
  max_attempts: number;
  /** Mode `all`: offline nodes are waited for (true) or skipped (false, the default). */
  include_offline: boolean;
  /** Mode `all`: open until the deadline; nodes that match later run it too. */
  continuous: boolean;
  /** Nothing is dispatched before this (epoch ms); the WPK is `scheduled` until then. Null: it started at creation. */
  start_at: number | null;
  /** Mode `all`: the rollout's pace as requested; null: every target at once. */
  rollout: HttpRollout | null;
  /** Dispatches per minute now (a ramp's grows as executions succeed); null without a rollout. */
  rollout_rate_per_minute: number | null;
  /** The earliest time of the rollout's next dispatch; null before the first or without a rollout. */
  next_dispatch_at: number | null;
  /** Mode `all`: abort criteria as requested ([]: none). */
  abort: HttpAbortCriterion[];
  /** State `aborted`: the criterion that fired, the executions that had ended and how many matched it. */
  aborted_by: (HttpAbortCriterion & { executed: number; matched: number }) | null;
  /** The highest attempt dispatched so far (0 while none was). */
  attempt: number;
  /** Mode one: the node running the current attempt. */
  assignee: string | null;
  created_at: number;
  updated_at: number;
  deadline: number;
  finished_at: number | null;
  result: Record<string, unknown> | null;
  error: string | null;
  /** Executions per state. */
  summary: Partial<Record<ExecutionRecordState, number>>;
  executions: ApiExecution[];
}

/** `GET /federation/wpk`: newest first; `next` (pass it as `after`) is set when the page is full, else null. */
export interface ApiWpkList { count: number; wpks: ApiWpk[]; next: string | null }

/** The `counters` of `GET /health`: what the hub counted since it started. */
export interface ApiCounters {
  messages: { registration: number; status: number; heartbeat: number; executions: number };
  registrations: number;
  deregistrations: number;
  refusals: Partial<Record<RefusalCode, number>>;
  ignored: {
    older_session: number; unknown_node: number; duplicate: number; older_copy: number;
    unknown_execution: number; stale_update: number;
  };
  wpks: {
    created: number; triggers: number; redispatches: number; cancel_commands: number;
    finished: Partial<Record<WpkState, number>>;
  };
  stale_transitions: number;
  offline_transitions: number;
  rebirths_requested: number;
  flushes: number;
  flush_errors: number;
  last_flush_ms: number;
}

/**
 * The `broker` of `GET /health` (embedded broker only): its own statistics,
 * passed through as the broker counts them (docs/api.md names the fields).
 */
export interface ApiBrokerHealth {
  connections: Readonly<Record<string, unknown>> | null;
  clients: number;
  traffic: { bytesIn: number; bytesOut: number; messagesIn: number; messagesOut: number };
  packet_guard_drops: number;
  tls_handshake_failures: number;
  /** CONNECTs refused with CONNACK 2: an empty client id with clean session 0. */
  identifier_rejected: number;
  auth: Readonly<Record<string, unknown>> | null;
}

/** `GET /health`: public, even with `--auth jwt`. */
export interface ApiHealth {
  status: 'ok' | 'degraded';
  version: string;
  auth: 'none' | 'jwt';
  boot_id: string;
  uptime_s: number;
  broker_connected: boolean;
  nodes: Record<NodeState, number>;
  refusals_total: number;
  wpks: Record<WpkState, number>;
  counters: ApiCounters;
  /** Where the hub keeps its state and whether it takes writes; `down` makes `status` `degraded`. */
  store: ApiStoreHealth;
  /** HA hubs (a PostgreSQL store): whether this hub is the active one, and which is. */
  ha?: ApiHaStatus;
  broker?: ApiBrokerHealth;
}

export interface ApiHaStatus {
  role: 'active' | 'standby';
  hub_id: string;
  /** This hub's lease epoch while active, else null. */
  epoch: number | null;
  /** The active hub as this one last read the lease (null: none right now). */
  active: { hub_id: string; epoch: number; api_url: string | null } | null;
}

export interface ApiStoreHealth {
  kind: 'files' | 'postgres' | 'custom';
  /** The data dir, or the database URL without its password. */
  location: string;
  state: 'up' | 'down';
  /** Epoch ms the current outage began, null while up. */
  down_since: number | null;
  last_error: string | null;
  /** Failed writes and checks since the hub started. */
  failures: number;
}

/** Every failure: `code` for programs, `message` for people, `details` for schema problems. */
export interface ApiErrorBody { error: { code: string; message: string; details?: string[] } }

// ---- the live feed (GET /federation/events) ------------------------------

/** A node as the dashboard shows it: no hardware, agent or registration details. */
export interface FeedNode {
  node_id: string;
  status: NodeState;
  status_reason: string | null;
  capabilities: string[];
  labels: Record<string, string>;
  last_seen: number | null;
  load: number | null;
  /** Executions the hub has in flight on the node. */
  running: number;
  /** Desired state: its version (0: none set), whether the node reported it, its error if applying failed. */
  state_version: number;
  in_sync: boolean;
  state_error: string | null;
  /** The node let a trigger time out unaccepted and gets no new work until it shows life. */
  unresponsive: boolean;
}

/** A work package as the dashboard lists it: no params, results or executions. */
export interface FeedWpk {
  wpk_id: string;
  state: WpkState;
  capability: string;
  action: string;
  mode: 'one' | 'all';
  attempt: number;
  assignee: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  error: string | null;
  /** Executions per state (counted now while it is open). */
  summary: Partial<Record<ExecutionRecordState, number>>;
  /** When a `scheduled` WPK starts; null: it started at creation. */
  start_at: number | null;
  continuous: boolean;
  /** A rollout's rate now (dispatches per minute); null without a rollout. */
  rollout_rate_per_minute: number | null;
}

/** Nodes by status (in total and per capability) and WPKs by state. */
export interface FleetCounts {
  nodes: Record<NodeState, number>;
  capabilities: Record<string, Record<NodeState, number>>;
  wpks: Record<WpkState, number>;
  /** Nodes whose reported state matches their desired state, and those whose does not. */
  state: { in_sync: number; out_of_sync: number };
}

/** One second of the dashboard's chart. */
export interface ActivityPoint {
  /** Start of the second, epoch ms. */
  t: number;
  /** Triggers published in that second. */
  dispatched: number;
  /** WPKs that ended in that second. */
  finished: number;
  /** Dispatch latency (trigger → the node's first answer) of the answers in that second; null without any. */
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
}

export interface FeedHubInfo { boot_id: string; version: string; auth: 'jwt' | 'none'; connected: boolean }

/** Event `snapshot`: everything a page shows, on connect. */
export interface FeedSnapshot {
  now: number;
  hub: FeedHubInfo;
  /** The first FEED_MAX_NODES nodes by node id (all of them in a smaller fleet); `nodes` events keep these posted. */
  nodes: FeedNode[];
  /** Nodes in the registry: more than `nodes.length` when the fleet is larger than the feed's window. */
  nodes_total: number;
  wpks: FeedWpk[];
  series: ActivityPoint[];
  counts: FleetCounts;
}

/** Event `nodes`: nodes that changed, and the ones the hub forgot. */
export interface FeedNodesEvent { upsert: FeedNode[]; remove: string[] }
/** Event `wpks`: work packages that are new or changed. */
export interface FeedWpksEvent { upsert: FeedWpk[] }
/** Event `stats`: a closed second of the chart (or none), the counts and the broker link. */
export interface FeedStatsEvent { now: number; point: ActivityPoint | null; counts: FleetCounts; connected: boolean }
