/**
 * The hub's options, one interface with a comment on every field, and their
 * defaults in one object (as MQTT.js does).
 */
import type { Adapter } from 'lowdb';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from '../lib/log.js';
import { DEFAULT_TOPIC_ROOT } from '../lib/topics.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from './admission.js';
import type { FlusherOptions } from './flusher.js';
import type { HubObservers } from './observe.js';
import type { OpenHubTransport } from './transport.js';
import type { RegistryFile } from './store/registry-file.js';
import type { Store } from './store/types.js';
import type { WpkOptions } from './wpk/service.js';
import type { WpkFile } from './wpk/store.js';

export interface HubOptions {
  /**
   * Opens the hub's MQTT client (`mqtt.connect(url, o)`, or
   * `broker.connectInMemory` for an embedded broker). Give this or `transport`.
   */
  connect?: (opts: IClientOptions) => MqttClient;
  /**
   * The hub's session with its broker, instead of `connect`: e.g.
   * `inProcessTransport(broker)` (edgefed/server) on an embedded broker, as
   * startFederation does.
   */
  transport?: OpenHubTransport;
  /** Directory of registry.json, wpks.json and the lock. Required unless `store` or `adapter` is given. */
  dataDir?: string;
  /**
   * Where the hub keeps its state (hub/store/types.ts). Default: the lowdb
   * files in `dataDir` (or the `adapter` / `wpkAdapter` given below).
   */
  store?: Store;
  /** Storage of the registry; default JSONFile at `<dataDir>/registry.json`. Tests pass lowdb's Memory. */
  adapter?: Adapter<RegistryFile>;
  /** Storage of work packages; default `<dataDir>/wpks.json`, in memory when there is no dataDir. */
  wpkAdapter?: Adapter<WpkFile>;
  /** Work-package timers, limits and defaults. */
  wpk?: WpkOptions;
  /** Topic root, default `edgefed/v1`. */
  topicRoot?: string;
  logger?: Logger;
  /** Largest node payload accepted, in bytes (default 64 KiB). */
  maxPayloadBytes?: number;
  /** Heartbeat intervals a node may miss before it is stale (default 3). */
  missedBeats?: number;
  /** How often liveness is checked (default 1000 ms). */
  sweepIntervalMs?: number;
  /** After a refusal on a retained topic, restore the last valid retained message (external brokers keep what they got). */
  repairRetained?: boolean;
  /** How long a deregistered node's record is kept before it is forgotten (default 7 days). */
  deregisteredRetentionMs?: number;
  /** How long a node may stay `offline` (since it was last seen) before its record is removed (default 7 days; 0 = keep for ever). */
  offlineRetentionMs?: number;
  /** Minimum time between two rebirth requests to one node (default 30 s). */
  rebirthThrottleMs?: number;
  /** MQTT keepalive of the hub's own session, seconds (default 30). */
  keepaliveS?: number;
  /**
   * A persistent MQTT session (clean: false): the broker keeps the hub's
   * subscriptions and queues what nodes publish at QoS 1 (execution updates,
   * registrations, statuses) while the hub is away. startFederation turns it
   * on for an external broker. Default false: a clean session, as suits the
   * embedded broker, which goes away with the hub.
   */
  persistentSession?: boolean;
  /**
   * MQTT client id of the hub. Default: with a persistent session, a stable
   * one (`hubClientId(topicRoot)`: `edgefed-hub` for the default root, else
   * `edgefed-hub-` and 8 hex digits of the root's SHA-256); otherwise one per
   * boot. Two hubs with one client id on one broker take the session from
   * each other in a loop. 1 to 128 of letters, digits and `. _ : @ -`.
   */
  clientId?: string;
  /** Credentials of the hub's MQTT session (JWT auth). */
  username?: string;
  password?: string;
  /**
   * High availability (server/ha/): false once this hub may no longer act
   * (its lease ran out on its own clock). Checked before every publish and
   * before every reconnect of the hub's session, so a hub that was paused
   * past its lease neither publishes nor takes the session back from its
   * successor. Default: always true.
   */
  mayAct?: () => boolean;
  /**
   * How long a live `lost` will carrying a `session` waits before it is
   * applied (default 0: at once). On a broker cluster set it to the time
   * the cluster takes to let a client reconnect elsewhere: a will published
   * there just before the node's new `online` is then ignored as an older
   * session's. It delays the failover of work on a node that really died.
   */
  willGraceMs?: number;
  /** HA: the lease this hub acts under (named in `hub/status`). */
  lease?: { hubId: string; epoch: number };
  /** Observers shared by successive hubs behind one server (an HA standby that becomes active). */
  events?: HubObservers;
  /** Write pacing and the retry backoff of a store that fails (flusher.ts). */
  flush?: Partial<Omit<FlusherOptions, 'onError'>>;
  /** How often a store with a `check` (PostgreSQL) is asked whether it answers (default 5000 ms). */
  storeCheckMs?: number;
  resync?: { settleMs: number; maxWaitMs: number };
}

export type HubDefaults = Required<Pick<HubOptions,
  'topicRoot' | 'maxPayloadBytes' | 'missedBeats' | 'sweepIntervalMs' | 'repairRetained' | 'rebirthThrottleMs' | 'keepaliveS' | 'resync'
  | 'deregisteredRetentionMs' | 'persistentSession' | 'storeCheckMs' | 'willGraceMs' | 'offlineRetentionMs'>>;

export const defaultHubOptions: HubDefaults = {
  topicRoot: DEFAULT_TOPIC_ROOT,
  maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
  missedBeats: 3,
  sweepIntervalMs: 1000,
  repairRetained: false,
  rebirthThrottleMs: 30_000,
  deregisteredRetentionMs: 7 * 24 * 3600 * 1000,
  keepaliveS: 30,
  persistentSession: false,
  storeCheckMs: 5000,
  willGraceMs: 0,
  offlineRetentionMs: 7 * 24 * 3600 * 1000,
  resync: { settleMs: 300, maxWaitMs: 5000 },
};
