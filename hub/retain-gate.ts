/**
 * The embedded broker's guarantee that refused payloads are never retained.
 * MQTT 3.1.1 has no way to refuse one PUBLISH without closing the connection,
 * so an inadmissible retained message on a node topic is let through with its
 * retain flag cleared: subscribers (the hub, operators) still see it once,
 * live, and the hub refuses and reports it; the broker's store keeps the last
 * valid message. Admission is the same function the hub's router uses.
 */
import type { Topics } from '../lib/topics.js';
import { admitNodeMessage, parseObject } from './admission.js';
import { validators } from '../schemas/index.js';

export interface GatedPacket { topic: string; payload: Buffer | string; retain: boolean }

export function makeRetainGate(topics: Topics, maxPayloadBytes: number): (packet: GatedPacket) => void {
  return function gate(packet) {
    if (!packet.retain) return;
    const parsed = topics.parse(packet.topic);
    if (parsed?.kind !== 'node') return;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    if (parsed.family === 'desired') {
      // The hub's (the ACL lets nobody else publish it when auth is on): kept when it is a desired state, or empty (cleared).
      if (!isDesiredState(payload, maxPayloadBytes)) packet.retain = false;
      return;
    }
    if (parsed.family !== 'registration' && parsed.family !== 'status' && parsed.family !== 'reported') {
      packet.retain = false; // only registration, status, desired and reported are retained by contract
      return;
    }
    if (!admitNodeMessage(parsed.family, parsed.nodeId, payload, maxPayloadBytes).ok) packet.retain = false;
  };
}

function isDesiredState(payload: Buffer, maxPayloadBytes: number): boolean {
  if (payload.length === 0) return true;
  if (payload.length > maxPayloadBytes) return false;
  const parsed = parseObject(payload);
  return parsed.ok && validators.desiredState(parsed.value).ok;
}
