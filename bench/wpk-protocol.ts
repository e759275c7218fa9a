/** What the WPK benchmarks' parent (wpk-harness.ts) and its fleet process (wpk-fleet.ts) exchange. */

export interface FleetConfig {
  host: string;
  port: number;
  nodes: number;
  prefix: string;
  capability: string;
  concurrency: number;
  keepaliveS: number;
  heartbeatMs: number;
  /** Agents started per second. */
  rate: number;
  /** Start the floor's echo client: `bench/ping` -> `bench/pong`, QoS 1 both ways. */
  responder: boolean;
  /**
   * TCP_NODELAY on the fleet's sockets. The agent's own transport
   * (agent/transport.ts) does not set it, so false is what a device does.
   */
  noDelay: boolean;
  /**
   * Ablation: every agent also has a capability of its own, named like its
   * node id, so a WPK of that capability has exactly one subscriber to its
   * trigger topic (what per-node trigger addressing would cost).
   */
  ownCapability: boolean;
}

export type FleetCommand = { cmd: 'cut'; ids: string[]; how: 'silent' | 'close' } | { cmd: 'stats' } | { cmd: 'stop' };
export type FleetReport =
  | { type: 'ready'; connected: number }
  | { type: 'cut'; at: number; cut: number }
  | { type: 'stats'; trigger_deliveries: number; update_publishes: number; cpu_ms: number; wall_ms: number }
  | { type: 'stopped' };

export const PING_TOPIC = 'bench/ping';
export const PONG_TOPIC = 'bench/pong';
