/**
 * The hub's session with its broker, behind one interface with two
 * implementations: HubLink (link.ts), an mqtt.js client for any broker,
 * with reconnects and a persistent session on an external one; and
 * InProcessLink (in-process-link.ts), which reads and writes the embedded
 * broker's bus and store directly, with no MQTT packets in between.
 * Either way the hub sees the same events: a session begins (onConnecting),
 * retained messages are replayed flagged `retained`, live ones follow in
 * the broker's order, the hub's status is announced retained, and
 * onSubscribed marks a session ready.
 */
import type { ISubscriptionMap } from 'mqtt';
import type { Logger } from '../lib/log.js';
import type { Topics } from '../lib/topics.js';
import type { HubStatus } from '../lib/wire.js';
import type { Publisher } from './context.js';

export interface LinkEvents {
  onMessage: (topic: string, payload: Buffer, retained: boolean) => void;
  /** Called when a session begins, before any message of that session is routed: what the broker queued or replays follows. */
  onConnecting: () => void;
  /** Called after every (re)connect once subscribed and announced; `first` for the first such session. */
  onSubscribed: (first: boolean) => void;
}

/** What the hub gives its transport. */
export interface LinkSetup extends LinkEvents {
  topics: Topics;
  bootId: string;
  clientId: string;
  /** clean: false: the broker keeps the subscriptions and queues QoS 1 messages while the hub is away (MQTT only). */
  persistent: boolean;
  keepaliveS: number;
  version: string;
  log: Logger;
  username?: string;
  password?: string;
  /** HA: the lease this hub acts under, named in its `hub/status`. */
  lease?: { hubId: string; epoch: number };
  /** When given, the session is not re-established (or announced) while it answers false: an HA hub past its lease. */
  mayAct?: () => boolean;
}

export interface HubTransport extends Publisher {
  readonly connected: boolean;
  /** Resolves once the first session is subscribed and announced; later reconnects are the transport's business. */
  start(): Promise<void>;
  /** Announces the hub's shutdown (retained) and leaves. */
  stop(): Promise<void>;
  /** Publishes the hub's `online` status again (retained): another hub's late will must not stand for this one. */
  reannounce(): void;
  /** Cuts the session at once, announcing nothing (the broker's will says `lost`): an HA hub stepping down. */
  abandon(): void;
}

export type OpenHubTransport = (setup: LinkSetup) => HubTransport;

/** A clean goodbye is given this long before the connection is cut (the will then says `lost`). */
export const STOP_TIMEOUT_MS = 3000;

/** The retained `hub/status` payload of this hub process. */
export function hubStatusPayload(setup: Pick<LinkSetup, 'bootId' | 'version' | 'lease'>, state: HubStatus['state'], reason?: HubStatus['reason']): string {
  const s: HubStatus = { state, boot_id: setup.bootId, ts: Date.now(), version: setup.version };
  if (reason) s.reason = reason;
  if (setup.lease) { s.hub_id = setup.lease.hubId; s.epoch = setup.lease.epoch; }
  return JSON.stringify(s);
}

/**
 * What the hub subscribes to. QoS 1 where a message lost while the hub is
 * away loses state (a persistent session queues these); QoS 0 where a queued
 * copy would mislead: a heartbeat only matters live, and the echo of a
 * previous hub process's trigger would read as a foreign trigger.
 */
export function hubSubscriptions(topics: Topics): ISubscriptionMap {
  return {
    [topics.allNodes('registration')]: { qos: 1 },
    [topics.allNodes('status')]: { qos: 1 },
    [topics.allExecutions()]: { qos: 1 },
    // Desired state: the hub's own (replayed to check the broker kept it) and what nodes report.
    [topics.allNodes('desired')]: { qos: 1 },
    [topics.allNodes('reported')]: { qos: 1 },
    [topics.hubStatus()]: { qos: 1 },
    [topics.allNodes('heartbeat')]: { qos: 0 },
    [topics.allTriggers()]: { qos: 0 },
  };
}

/** The hub's transport with its publishes dropped while the hub may not act (HA: the lease ran out). */
export function gated(link: HubTransport, mayAct: (() => boolean) | undefined): HubTransport {
  if (!mayAct) return link;
  return {
    get connected() { return link.connected; },
    start: () => link.start(),
    stop: () => link.stop(),
    abandon: () => link.abandon(),
    reannounce: () => { if (mayAct()) link.reannounce(); },
    publish(topic, payload, opts) { if (mayAct()) link.publish(topic, payload, opts); },
  };
}
