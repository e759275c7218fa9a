/**
 * What a topic-family handler may use. Handlers get this instead of the Hub so
 * each stays a small function of (context, node id, payload, liveness).
 */
import type { Logger } from '../lib/log.js';
import type { Topics } from '../lib/topics.js';
import type { HubCounters } from './counters.js';
import type { Refusals } from './refusals.js';
import type { Registry } from './registry.js';

export interface Publisher {
  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): void;
}

export interface ResyncState {
  /** Nodes whose registration reached the hub (replayed or live): the broker holds them. */
  seen: Set<string>;
  /** The broker replayed a retained hub status: it kept its retained store. */
  brokerKeptStore: boolean;
  /** Raised on every (re)connect, so a resync of an older session gives up. */
  generation: number;
}

export interface HubContext {
  readonly topics: Topics;
  readonly registry: Registry;
  readonly counters: HubCounters;
  readonly refusals: Refusals;
  readonly log: Logger;
  readonly out: Publisher;
  /** Asks a node to publish its registration and status again (throttled per node). */
  requestRebirth(nodeId: string): void;
  /** What the broker showed since the last (re)connect. */
  readonly resync: ResyncState;
  /** Registrations the hub itself re-published, per node: their echoes are not signs of life. */
  readonly expectedEchoes: Map<string, number>;
  now(): number;
  /**
   * A live `lost` will that carries a `session` waits this long before it is
   * applied (0: at once). On a broker cluster the will of a dead broker node
   * can be published just before the node's `online` from another node: after
   * the wait, a newer session makes it an older session's, ignored.
   */
  readonly willGraceMs: number;
  /** Runs `apply` after willGraceMs (one pending will per node: a newer replaces it). */
  deferWill(nodeId: string, apply: () => void): void;
}

/** `live` is false for a message replayed from the broker's retained store on subscribe. */
export type Handler<T> = (ctx: HubContext, nodeId: string, value: T, live: boolean) => void;
