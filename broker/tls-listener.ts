import type { Socket } from 'node:net';
import { createServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { serveOn, type TcpListener } from './tcp-listener.js';
import { EdgefedError } from '../lib/errors.js';

/**
 * The mqtts side of the broker: a node:tls server whose decrypted sockets go
 * to the same accept path (packet guard, aedes) as the plain TCP ones.
 */

export interface TlsListenerOptions {
  host: string;
  port: number;
  /** Server options from `serverTlsOptions()` (cert, key, and for mutual TLS ca + requestCert). */
  tls: TlsOptions;
  /**
   * Bound on the TLS handshake. node's default is 120 s; a peer that never
   * finishes it should not hold a socket longer than one that never sends CONNECT.
   */
  handshakeTimeoutMs: number;
  /** Receives each socket once its handshake succeeded (and, with mutual TLS, its client certificate was accepted). */
  accept(socket: TLSSocket): void;
  /**
   * Runs on the raw TCP socket before the handshake (a refused flood costs no
   * crypto); false destroys it. node:tls then reports that socket through
   * `onHandshakeError` too ("socket hang up"): its TLS wrapper is a different
   * object, so the refusal cannot be told apart there.
   */
  admit?(socket: Socket): boolean;
  /** A failed handshake (no client certificate, unknown CA, plain MQTT on the TLS port...): reported, never thrown. */
  onHandshakeError(error: Error, remoteAddress: string | undefined): void;
  /** Server errors after listening (e.g. EMFILE on accept): reported, never thrown. */
  onError(error: Error): void;
}

export const MQTTS_LISTEN_CODE = 'EDGEFED_ERR_MQTTS_LISTEN';

export async function listenTls(options: TlsListenerOptions): Promise<TcpListener> {
  // noDelay reaches the underlying TCP socket: same reason as the plain listener (tcp-listener.ts).
  const server = createServer({ ...options.tls, noDelay: true, handshakeTimeout: options.handshakeTimeoutMs }, options.accept);
  server.on('tlsClientError', (error: Error, socket: Socket) => options.onHandshakeError(error, socket.remoteAddress));
  return serveOn(server, options).catch((error: NodeJS.ErrnoException) => {
    // Named apart from the plain port, so the user knows which flag to change.
    throw new EdgefedError(MQTTS_LISTEN_CODE, `cannot listen for mqtts on ${options.host}:${options.port} (${error.code ?? error.message}); choose another --mqtts-port`, { cause: error });
  });
}
