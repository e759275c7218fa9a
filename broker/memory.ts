import { Duplex } from 'node:stream';
import { MqttClient, type IClientOptions } from 'mqtt';

/**
 * An in-memory transport, so tests (and an embedded agent) can talk to the
 * broker without a socket. Node 20 has no `stream.duplexPair`.
 */

/** One end of a pair: what is written here is read at the peer. */
class MemoryEnd extends Duplex {
  peer: MemoryEnd | undefined;
  // A write the peer could not take yet; released when the peer reads, so a
  // slow reader slows the writer instead of growing the peer's buffer.
  private blockedWrite: (() => void) | undefined;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    if (peer === undefined || peer.destroyed) {
      callback(new Error('EPIPE: the other end of the in-memory pair is closed'));
      return;
    }
    if (peer.push(chunk)) callback();
    else this.blockedWrite = () => callback();
  }

  override _read(): void {
    const release = this.peer?.blockedWrite;
    if (release === undefined) return;
    this.peer!.blockedWrite = undefined;
    // Released on the next tick, never inside read(): aedes reads in a
    // recursive loop, and a write released synchronously lets the writer push
    // its next chunk into that same read, until the stack overflows under load.
    process.nextTick(release);
  }

  // end() here is a FIN at the peer: it reads EOF, as over TCP.
  override _final(callback: (error?: Error | null) => void): void {
    this.peer?.push(null);
    callback();
  }

  // Destroy reaches the peer, as a socket close would; without it mqtt.js's
  // endAsync() and aedes's client cleanup wait forever for a 'close'.
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    this.peer = undefined;
    if (peer !== undefined && !peer.destroyed) peer.destroy();
    callback(error);
  }
}

/** Two connected Duplex streams, like the two ends of a TCP connection. */
export function duplexPair(): [Duplex, Duplex] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** Receives the server end of every new in-memory connection (e.g. a broker's guarded `handle`). */
export type AcceptConnection = (serverSide: Duplex) => void;

/**
 * An mqtt.js client connected through `duplexPair()`. mqtt.js calls the
 * stream builder again on every reconnect, so each call makes a fresh pair
 * and hands its server end to `accept`.
 */
export function connectInMemory(accept: AcceptConnection, options: IClientOptions = {}): MqttClient {
  const buildStream = (): Duplex => {
    const [clientSide, serverSide] = duplexPair();
    accept(serverSide);
    return clientSide;
  };
  // MqttClient writes its defaults into the options object: never into the caller's.
  return new MqttClient(buildStream, { ...options });
}
