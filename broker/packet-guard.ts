import { Duplex } from 'node:stream';
import { FrameScanner, type FrameViolation } from './frame-scanner.js';
import type { ByteMeter } from './traffic.js';
import { EdgefedError } from '../lib/errors.js';

/**
 * A transparent Duplex between a connection and `aedes.handle()` that cuts
 * the connection as soon as an MQTT fixed header announces a packet larger
 * than the limit. Aedes accepts packets of any size (it buffered a 50 MB
 * PUBLISH in full), so without this one client can exhaust the hub's memory.
 *
 * The guard never buffers a body: it only counts bytes (see FrameScanner), so
 * the refused packet neither reaches aedes nor grows memory.
 */

/** What the guard reports when it cuts a connection. */
export interface PacketGuardViolation extends FrameViolation {
  maxPacketBytes: number;
  /** `address:port` of a socket peer; undefined for in-memory connections. */
  remoteAddress: string | undefined;
}

export type PacketGuardListener = (violation: PacketGuardViolation) => void;

/** The error the guard is destroyed with, so aedes reports it as a client error. */
export class PacketGuardError extends EdgefedError {
  override readonly name = 'PacketGuardError';

  constructor(readonly violation: PacketGuardViolation) {
    super('EDGEFED_ERR_PACKET_REFUSED', describeViolation(violation));
  }
}

export function describeViolation(v: PacketGuardViolation): string {
  return v.reason === 'too-large'
    ? `packet of ${v.declaredBytes} bytes exceeds the ${v.maxPacketBytes} byte limit`
    : 'malformed MQTT remaining length (more than 4 bytes)';
}

/** Wraps `conn`; hand the result to `aedes.handle()` instead of `conn`. */
export function guardStream(conn: Duplex, maxPacketBytes: number, onViolation?: PacketGuardListener, meter?: ByteMeter): PacketGuard {
  return new PacketGuard(conn, maxPacketBytes, onViolation, meter);
}

export class PacketGuard extends Duplex {
  /** Captured at construction: a socket forgets its peer once closed, when we still want to log it. */
  readonly remoteAddress: string | undefined;
  private readonly scanner: FrameScanner;

  constructor(
    private readonly conn: Duplex,
    maxPacketBytes: number,
    private readonly onViolation?: PacketGuardListener,
    /** Counts the bytes this connection carries both ways (the broker's traffic metrics). */
    private readonly meter?: ByteMeter,
  ) {
    super();
    this.scanner = new FrameScanner(maxPacketBytes);
    this.remoteAddress = describeRemote(conn);
    this.followConnection();
  }

  private followConnection(): void {
    const conn = this.conn;
    conn.on('data', (chunk: Buffer | string) => this.forward(chunk));
    // Half-close from the peer: aedes closes the client on 'end'.
    conn.on('end', () => {
      if (!this.destroyed) this.push(null);
    });
    // Stays attached for the connection's life so a late socket error (ECONNRESET
    // after we destroyed it) is never an uncaught 'error'.
    conn.on('error', (err: Error) => this.destroy(err));
    // Without this aedes never learns the socket is gone and the client's
    // endAsync() waits forever for the broker to close its side.
    conn.on('close', () => this.destroy());
  }

  private forward(chunk: Buffer | string): void {
    // Bytes still queued in the socket after we cut it must not be scanned or reported again.
    if (this.destroyed) return;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.meter) this.meter.bytesIn += bytes.length;
    const violation = this.scanner.scan(bytes);
    if (violation !== undefined) {
      this.refuse(violation);
      return;
    }
    if (!this.push(bytes)) this.conn.pause();
  }

  private refuse(frame: FrameViolation): void {
    const violation: PacketGuardViolation = {
      ...frame,
      maxPacketBytes: this.scanner.maxPacketBytes,
      remoteAddress: this.remoteAddress,
    };
    // Destroy before notifying, so a throwing listener cannot keep the connection open.
    this.destroy(new PacketGuardError(violation));
    this.onViolation?.(violation);
  }

  override _read(): void {
    if (this.conn.isPaused()) this.conn.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // The connection is going away and its 'close' will destroy us; nothing to deliver to.
    if (this.conn.destroyed) return callback();
    if (this.meter) this.meter.bytesOut += chunk.length;
    if (this.conn.write(chunk, encoding)) callback();
    else this.conn.once('drain', () => callback());
  }

  // mqtt-packet corks around each packet: pass the batch on as one corked write
  // so a packet leaves in one segment rather than one per header field.
  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: (error?: Error | null) => void): void {
    if (this.conn.destroyed) return callback();
    this.conn.cork();
    let flowing = true;
    for (const { chunk, encoding } of chunks) {
      if (this.meter) this.meter.bytesOut += chunk.length;
      flowing = this.conn.write(chunk, encoding);
    }
    this.conn.uncork();
    if (flowing) callback();
    else this.conn.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.conn.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // aedes closes a client by destroying its stream: the socket must follow.
    if (!this.conn.destroyed) this.conn.destroy();
    callback(error);
  }
}

function describeRemote(conn: Duplex): string | undefined {
  const { remoteAddress, remotePort } = conn as Duplex & { remoteAddress?: string; remotePort?: number };
  if (remoteAddress === undefined) return undefined;
  return remoteAddress.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`;
}

/** The peer of an aedes client for logs: the guard knows the socket's address; in-memory connections have none. */
export function remoteOf(client: { conn: unknown }): string {
  return client.conn instanceof PacketGuard ? (client.conn.remoteAddress ?? 'in-memory') : 'unknown';
}
