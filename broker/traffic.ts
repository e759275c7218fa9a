/**
 * What crossed the embedded broker since it started, for `/metrics`: bytes
 * on every connection (TCP, TLS and in-memory, the hub's own included) and
 * PUBLISH packets in (from clients) and out (delivered to subscribers).
 */
import type { Aedes } from 'aedes';
import type { AuthorizeForwardHook } from './options.js';

export interface ByteMeter { bytesIn: number; bytesOut: number }

export interface BrokerTraffic extends ByteMeter {
  /** PUBLISH packets clients sent that the broker accepted. */
  messagesIn: number;
  /** PUBLISH packets delivered to subscribers (one per subscriber, retained replays included). */
  messagesOut: number;
}

export function newTraffic(): BrokerTraffic {
  return { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 };
}

/**
 * aedes asks `authorizeForward` about every delivery, so it is the one place
 * that sees each message going out; a user's own hook still decides.
 */
export function countingForward(traffic: BrokerTraffic, next?: AuthorizeForwardHook): AuthorizeForwardHook {
  return function countForward(client, packet) {
    const out = next ? next(client, packet) : packet;
    if (out) traffic.messagesOut += 1;
    return out;
  };
}

/** Counts client publishes the broker accepted ('publish' also fires for its own $SYS and will messages: those have no client). */
export function countPublishes(aedes: Aedes, traffic: BrokerTraffic): void {
  aedes.on('publish', (_packet, client) => {
    if (client) traffic.messagesIn += 1;
  });
}
