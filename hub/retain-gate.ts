/**
 * The embedded broker's guarantee that refused payloads are never retained.
 * MQTT 3.1.1 has no way to refuse one PUBLISH without closing the connection,
 * so an inadmissible retained message on a node topic is let through with its
 * retain flag cleared: subscribers (the hub, operators) still see it once,
 * live, and the hub refuses and reports it; the broker's store keeps the last
 * valid message. Admission is the same function the hub's router uses.
 */
import type { Topics } from '../lib/topics.js';
import { admitNodeMessage } from './admission.js';

export interface GatedPacket { topic: string; payload: Buffer | string; retain: boolean }

export function makeRetainGate(topics: Topics, maxPayloadBytes: number): (packet: GatedPacket) => void {
  return function gate(packet) {
    if (!packet.retain) return;
    const parsed = topics.parse(packet.topic);
    if (parsed?.kind !== 'node') return;
    if (parsed.family !== 'registration' && parsed.family !== 'status') {
      packet.retain = false; // only registration and status are retained by contract
      return;
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    if (!admitNodeMessage(parsed.family, parsed.nodeId, payload, maxPayloadBytes).ok) packet.retain = false;
  };
}
