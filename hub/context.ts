/**
 * What a topic-family handler may use. Handlers get this instead of the Hub so
 * each stays a small function of (context, node id, payload, liveness).
 */
import type { Logger } from '../lib/log.js';
import type { Topics } from '../lib/topics.js';
import type { HubCounters } from './counters.js';
import type { Flusher } from './flusher.js';
import type { Refusals } from './refusals.js';
import type { Registry } from './registry.js';

export interface Publisher {
  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): void;
}

export interface HubContext {
  readonly topics: Topics;
  readonly registry: Registry;
  readonly flusher: Flusher;
  readonly counters: HubCounters;
  readonly refusals: Refusals;
  readonly log: Logger;
  readonly out: Publisher;
  /** Asks a node to publish its registration and status again (throttled per node). */
  requestRebirth(nodeId: string): void;
  /** Nodes whose registration reached the hub (replayed or live) since the last (re)connect: the broker holds them. */
  readonly seenSinceConnect: Set<string>;
  /** Nodes whose registration the hub itself just re-published: its echo is not a sign of life. */
  readonly expectedEchoes: Set<string>;
  now(): number;
}

/** `live` is false for a message replayed from the broker's retained store on subscribe. */
export type Handler<T> = (ctx: HubContext, nodeId: string, value: T, live: boolean) => void;
