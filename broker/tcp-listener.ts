import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * The TCP side of the broker: accepts sockets, remembers them, and on close
 * destroys them, because `server.close()` alone waits for every client to
 * leave on its own (an MQTT client with keepalive never does). The mqtts
 * listener (tls-listener.ts) runs its node:tls server through `serveOn` too.
 */

export interface TcpListener {
  /** The bound port, read back from the socket (so 0 gives the ephemeral port). */
  readonly port: number;
  close(): Promise<void>;
}

export interface TcpListenerOptions {
  host: string;
  port: number;
  accept(socket: Socket): void;
  /**
   * Runs first on every new socket (e.g. a connection gate's `admit`); false
   * destroys the socket before anything reads from it.
   */
  admit?(socket: Socket): boolean;
  /** Server errors after listening (e.g. EMFILE on accept): reported, never thrown. */
  onError(error: Error): void;
}

export async function listenTcp(options: TcpListenerOptions): Promise<TcpListener> {
  // No Nagle: a trigger or an update is one small packet that must go now;
  // with Nagle and delayed ACKs, 1% of round trips stalled 40-50 ms (bench/RESULTS.md).
  const server = createServer({ noDelay: true });
  return serveOn(server, options, options.accept);
}

/**
 * Binds `server` and tracks its raw sockets from the 'connection' event, so
 * that close() also cuts a TLS socket still in its handshake (which never
 * reached the accept callback). `admitted` gets each socket `admit` let in;
 * a TLS server hands its sockets on after the handshake instead.
 */
export async function serveOn(
  server: Server,
  options: Pick<TcpListenerOptions, 'host' | 'port' | 'onError' | 'admit'>,
  admitted?: (socket: Socket) => void,
): Promise<TcpListener> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (options.admit && !options.admit(socket)) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    admitted?.(socket);
  });
  await bind(server, options.host, options.port);
  server.on('error', options.onError);
  const { port } = server.address() as AddressInfo;
  return { port, close: () => closeServer(server, sockets) };
}

function bind(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // EADDRINUSE, EACCES, EADDRNOTAVAIL arrive as 'error' instead of the listen callback.
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    // Stop accepting first, so no socket arrives after the sweep below.
    server.close(() => resolve());
    for (const socket of sockets) socket.destroy();
  });
}
