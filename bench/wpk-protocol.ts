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
   * TCP_NODELAY on the fleet's sockets (agents' and the echo client's). The
   * agent's own transport (agent/transport.ts) sets it since 967cc92, so true
   * is what a device does; false is the `--nagle` ablation.
   */
  noDelay: boolean;
  /**
   * Historical ablation: every agent also has a capability of its own, named
   * like its node id, and the i-th WPK targets node i mod N's. Before 967cc92
   * it was the only way to give a trigger one subscriber; since then every
   * mode-one trigger goes to `wpk/{cap}/trigger/{assignee}` anyway, so it only
   * changes placement (round robin instead of least loaded among N).
   */
  ownCapability: boolean;
  /**
   * Timestamp, in the fleet, each trigger's arrival (mqtt.js `packetreceive`)
   * and the `accepted` / `succeeded` updates leaving (`packetsend`), and the
   * floor's ping arriving and pong leaving: the legs of each round trip
   * (reported by `{ cmd: 'trace' }`). For dispatch-latency only.
   */
  trace: boolean;
}

export type FleetCommand = { cmd: 'cut'; ids: string[]; how: 'silent' | 'close' } | { cmd: 'stats' } | { cmd: 'trace' } | { cmd: 'stop' };
export type FleetReport =
  | { type: 'ready'; connected: number }
  | { type: 'cut'; at: number; cut: number }
  | {
    type: 'stats';
    /** Trigger messages the agents received, and of those on the broadcast topic `wpk/{cap}/trigger`. */
    trigger_deliveries: number;
    broadcast_trigger_deliveries: number;
    update_publishes: number;
    /** `succeeded` updates the agents sent, and of those for a WPK some agent had already sent one for (the action ran twice). */
    succeeded_publishes: number;
    duplicate_succeeded: number;
    cpu_ms: number;
    wall_ms: number;
  }
  | {
    type: 'trace';
    /** `wpk_id#attempt`, trigger received, `accepted` sent, `succeeded` sent (epoch ms; NaN: not seen). */
    wpk: Array<[string, number, number, number]>;
    /** Ping sequence number, ping received, pong sent (epoch ms). */
    floor: Array<[number, number, number]>;
  }
  | { type: 'stopped' };

export const PING_TOPIC = 'bench/ping';
export const PONG_TOPIC = 'bench/pong';
