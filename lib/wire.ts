/**
 * The payloads of the wire contract as TypeScript types. Field names are the
 * wire's snake_case; times are Unix epoch milliseconds. The JSON Schemas in
 * schemas/ are the source of truth at runtime; test/schemas.test.ts proves at
 * compile time that these types and the schemas describe the same shapes.
 * This file is type-only so the agent can use it without loading ajv.
 */

export interface AgentInfo { name: string; version: string }
export interface HardwareInfo { arch?: string; cpus?: number; memory_mb?: number }

/** `nodes/{node_id}/registration`, retained. An empty retained payload deregisters. */
export interface Registration {
  node_id: string;
  capabilities: string[];
  boot_id: string;
  ts: number;
  endpoint?: string;
  labels?: { [name: string]: string };
  agent?: AgentInfo;
  hardware?: HardwareInfo;
  heartbeat_interval_ms?: number;
  max_concurrency?: number;
}

/** `nodes/{node_id}/status`, retained; the offline/lost form is the node's Last Will. */
export interface NodeStatus {
  state: 'online' | 'offline';
  reason?: 'lost' | 'shutdown';
  boot_id: string;
  ts: number;
  /**
   * The connection within this boot (1 for the first CONNECT, then +1 for
   * each), like Sparkplug's bdSeq: the will set at a CONNECT and the `online`
   * published after it carry the same number. Optional: without it a status
   * is applied as before.
   */
  session?: number;
}

/** `nodes/{node_id}/heartbeat`, QoS 0, not retained. */
export interface Heartbeat {
  seq: number;
  ts: number;
  uptime_s?: number;
  load?: number;
  running_wpks?: number;
}

export type ExecutionState = 'accepted' | 'running' | 'succeeded' | 'failed' | 'rejected' | 'timed_out';

/** `nodes/{node_id}/executions/{wpk_id}` */
export interface ExecutionUpdate {
  wpk_id: string;
  node_id: string;
  attempt: number;
  state: ExecutionState;
  ts: number;
  progress?: number;
  result?: { [key: string]: unknown };
  error?: string;
}

/** `wpk/{capability}/trigger`, published by the hub only. */
export interface WpkTrigger {
  wpk_id: string;
  capability: string;
  action: string;
  params?: { [key: string]: unknown };
  mode: 'one' | 'all';
  /** mode `one`: the one node that runs it. Agents not named ignore the trigger. */
  assignee?: string;
  /** mode `all`: the nodes that run it (absent: every node of the capability). */
  targets?: string[];
  attempt: number;
  created_at: number;
  deadline: number;
  timeout_ms?: number;
}

export interface CancelCommand { command: 'cancel'; wpk_id: string; attempt: number; ts: number }
export interface RebirthCommand { command: 'rebirth'; ts: number }
/** `nodes/{node_id}/commands`, published by the hub only. */
export type Command = CancelCommand | RebirthCommand;

/** `hub/status`, retained; the offline form is the hub's Last Will. */
export interface HubStatus {
  state: 'online' | 'offline';
  reason?: 'lost' | 'shutdown';
  boot_id: string;
  ts: number;
  version?: string;
  /** HA hubs only: the hub holding the lease (`--hub-id`). */
  hub_id?: string;
  /** HA hubs only: its lease's fencing epoch (a higher one is a newer active hub). */
  epoch?: number;
}

/** `nodes/{node_id}/desired`, retained, QoS 1, published by the hub only (issue 16). */
export interface DesiredState {
  /** Raised by one with every change; 0 before any. */
  version: number;
  state: { [key: string]: unknown };
  ts: number;
}

/** `nodes/{node_id}/reported`, retained, QoS 1, published by the node itself. */
export interface ReportedState {
  /** The desired version the node has applied (or failed to apply, with `error`). */
  version: number;
  state: { [key: string]: unknown };
  ts: number;
  /** Applying `version` failed: why. `state` is then what the node still runs. */
  error?: string;
}

export type RefusalCode =
  | 'not_json'
  | 'not_object'
  | 'schema'
  | 'too_large'
  | 'node_id_mismatch'
  | 'invalid_node_id'
  | 'unknown_topic'
  | 'not_allowed';

/** `hub/errors/{node_id}`: why the hub refused a message of that node. */
export interface HubError {
  code: RefusalCode;
  reason: string;
  topic: string;
  node_id?: string;
  ts: number;
}

/** Body of `POST /federation/register` (the report's HTTP contract). */
export interface HttpRegistration {
  node_id: string;
  capabilities: string[];
  endpoint?: string;
  labels?: { [name: string]: string };
  agent?: AgentInfo;
  hardware?: HardwareInfo;
  heartbeat_interval_ms?: number;
  max_concurrency?: number;
  boot_id?: string;
}

/** Body of `POST /federation/wpk`: only capability and action are required. */
export interface HttpWpkRequest {
  capability: string;
  action: string;
  params?: { [key: string]: unknown };
  mode?: 'one' | 'all';
  /** Only these nodes may run it. */
  nodes?: string[];
  /** Only nodes with all these labels may run it. */
  labels?: { [name: string]: string };
  /** How long one attempt may run, in ms. */
  timeout_ms?: number;
  /** Absolute epoch ms after which no new attempt starts (default: one hour after creation). */
  deadline?: number;
  /** Attempts before the WPK fails (mode one). */
  max_attempts?: number;
  /** Mode all: also wait (until the deadline) for matching nodes that are offline now; default false: they are skipped. */
  include_offline?: boolean;
  /** Mode all: stay open until the deadline; every node that matches later runs it once too. */
  continuous?: boolean;
  /** Mode all: dispatch at this pace, targets waiting `queued` for their turn. */
  rollout?: HttpRollout;
  /** Mode all: end the WPK `aborted` when one of these is met. */
  abort?: HttpAbortCriterion[];
  /** Absolute epoch ms before which nothing is dispatched: the WPK is `scheduled` until then. */
  start_at?: number;
}

/**
 * A rollout's pace: a fixed `max_per_minute`, or an exponential ramp that
 * starts at `base_per_minute` and grows by `factor` each time
 * `every_succeeded` more executions succeed (capped by `max_per_minute` if
 * given). Targets go in order of the `order_label` label's value (nodes
 * without it last), then by node id.
 */
export interface HttpRollout {
  max_per_minute?: number;
  base_per_minute?: number;
  factor?: number;
  every_succeeded?: number;
  order_label?: string;
}

/**
 * Ends a rollout `aborted` once at least `min_executed` executions ended and
 * `threshold_pct` percent of them ended `on` that way (`any`: failed,
 * rejected, timed out or lost).
 */
export interface HttpAbortCriterion {
  on: 'failed' | 'rejected' | 'timed_out' | 'any';
  min_executed: number;
  threshold_pct: number;
}

/** Body of `POST /federation/nodes/:id/heartbeat` (all optional). */
export interface HttpHeartbeat {
  load?: number;
  running_wpks?: number;
  uptime_s?: number;
}
