/**
 * Follows MQTT fixed headers in a byte stream without buffering anything, so
 * the packet guard can refuse an oversized packet as soon as its header says
 * so, before the body arrives. Aedes itself has no packet size limit.
 *
 * Fixed header [MQTT-2.2]: one byte of type and flags, then the Remaining
 * Length as a variable byte integer of 1..4 bytes [MQTT-2.2.3], then that many
 * bytes of variable header and payload, which are skipped here.
 */

/** Why a stream was refused. */
export type FrameViolationReason = 'too-large' | 'malformed-length';

export interface FrameViolation {
  reason: FrameViolationReason;
  /** Control packet type from the first header byte (1 = CONNECT, 3 = PUBLISH, ...). */
  packetType: number;
  /**
   * Total packet size the header announced (fixed header + remaining length),
   * or undefined when the length encoding was malformed.
   */
  declaredBytes: number | undefined;
}

/** A remaining-length field never takes more than four bytes [MQTT-2.2.3]. */
const MAX_LENGTH_BYTES = 4;
const CONTINUATION_BIT = 0x80;
const VALUE_BITS = 0x7f;

type ScanState = 'type' | 'length' | 'body';

export class FrameScanner {
  private state: ScanState = 'type';
  private packetType = 0;
  private remainingLength = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private bodyLeft = 0;
  // Sticky: once a stream has lied about its framing nothing after it can be trusted.
  private violation: FrameViolation | undefined;

  constructor(readonly maxPacketBytes: number) {
    if (!Number.isInteger(maxPacketBytes) || maxPacketBytes < 2) {
      // 2 bytes is the smallest MQTT packet (PINGREQ); anything less refuses every client.
      throw new RangeError(`maxPacketBytes must be an integer >= 2, got ${maxPacketBytes}`);
    }
  }

  /**
   * Advances over `chunk`; returns the violation if a packet header in it (or
   * in an earlier chunk) breaks the limit. Cost is per header byte, not per
   * body byte: bodies are skipped by arithmetic.
   */
  scan(chunk: Uint8Array): FrameViolation | undefined {
    let offset = 0;
    while (offset < chunk.length && this.violation === undefined) {
      if (this.state === 'body') {
        offset += this.skipBody(chunk.length - offset);
      } else if (this.state === 'type') {
        this.startPacket(chunk[offset]!);
        offset += 1;
      } else {
        this.violation = this.readLengthByte(chunk[offset]!);
        offset += 1;
      }
    }
    return this.violation;
  }

  private skipBody(available: number): number {
    const skipped = Math.min(this.bodyLeft, available);
    this.bodyLeft -= skipped;
    if (this.bodyLeft === 0) this.state = 'type';
    return skipped;
  }

  private startPacket(firstByte: number): void {
    this.packetType = firstByte >> 4;
    this.remainingLength = 0;
    this.multiplier = 1;
    this.lengthBytes = 0;
    this.state = 'length';
  }

  private readLengthByte(byte: number): FrameViolation | undefined {
    this.lengthBytes += 1;
    this.remainingLength += (byte & VALUE_BITS) * this.multiplier;
    this.multiplier *= 128;
    if ((byte & CONTINUATION_BIT) !== 0) {
      if (this.lengthBytes < MAX_LENGTH_BYTES) return undefined;
      return { reason: 'malformed-length', packetType: this.packetType, declaredBytes: undefined };
    }
    const declaredBytes = 1 + this.lengthBytes + this.remainingLength;
    if (declaredBytes > this.maxPacketBytes) {
      return { reason: 'too-large', packetType: this.packetType, declaredBytes };
    }
    this.bodyLeft = this.remainingLength;
    this.state = this.bodyLeft === 0 ? 'type' : 'body';
    return undefined;
  }
}
