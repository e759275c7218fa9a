import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { TlsOptions } from 'node:tls';
import { Aedes, type Client } from 'aedes';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from '../lib/log.js';
import { serverTlsOptions } from '../lib/tls-material.js';
import { clientIdRule } from './client-id-rule.js';
import { toAedesOptions } from './aedes-options.js';
import { assertBindAllowed } from './bind-policy.js';
import { createConnectionGate, type ConnectionGate, type ConnectionGateStats } from './conn-limits.js';
import { connectInMemory } from './memory.js';
import { connectInProcess, type InProcessClient } from './in-process.js';
import { indexedMemoryPersistence } from './retained-index.js';
import { DEFAULT_MQTTS_PORT, resolveBrokerOptions, type BrokerOptions, type ResolvedBrokerOptions } from './options.js';
import { describeViolation, guardStream, PacketGuardError, remoteOf, type PacketGuardViolation } from './packet-guard.js';
import { listenTcp, type TcpListener } from './tcp-listener.js';
import { listenTls } from './tls-listener.js';
import { countingForward, countPublishes, newTraffic, type BrokerTraffic } from './traffic.js';

export { defaultBrokerOptions, BROKER_OPTION_CODE, DEFAULT_MQTTS_PORT } from './options.js';
export type {
  AuthenticateHook,
  AuthorizeForwardHook,
  AuthorizePublishHook,
  AuthorizeSubscribeHook,
  BrokerOptions,
  BrokerTlsOptions,
} from './options.js';
export { MQTTS_LISTEN_CODE } from './tls-listener.js';
export type { BrokerTraffic } from './traffic.js';
export { TLS_ERROR_CODE, TlsMaterialError, type TlsField, type TlsMaterial } from '../lib/tls-material.js';
export { INSECURE_BIND_CODE, isLoopbackHost } from './bind-policy.js';
export { duplexPair } from './memory.js';
export type { InProcessClient, InProcessDeliver } from './in-process.js';
export { guardStream, PacketGuardError, type PacketGuardViolation } from './packet-guard.js';

/** Counters since start; the object is live (read it any time). */
export interface BrokerStats {
  /** Connections cut by the packet guard (oversized or malformed packet header). */
  packetGuardDrops: number;
  /**
   * mqtts connections that ended in or before the TLS handshake: no or an
   * untrusted client certificate, not TLS at all, handshake timeout, peer gone.
   */
  tlsHandshakeFailures: number;
  /** CONNECTs refused with CONNACK 2: an empty client id with clean session 0 (MQTT-3.1.3-8). */
  readonly identifierRejected: number;
  /** The TCP/TLS accept gate: open connections, refusals by reason; undefined with `listen: false`. */
  readonly connections: ConnectionGateStats | undefined;
  /** Bytes and PUBLISH packets in and out, over every connection. */
  readonly traffic: Readonly<BrokerTraffic>;
  /** MQTT clients connected now (CONNACKed sessions, in-memory and in-process ones included). */
  readonly clients: number;
}

export interface EdgefedBroker {
  /** The embedded aedes instance, for events and `publish`. Do not call its `close()`: use ours. */
  readonly aedes: Aedes;
  /** Bound TCP port (the real one when 0 was asked); undefined with `listen: false` or `plain: false`. */
  readonly port: number | undefined;
  /** `mqtt://host:port` of the TCP listener; undefined with `listen: false` or `plain: false`. */
  readonly url: string | undefined;
  /** Bound mqtts port (the real one when 0 was asked); undefined without `tls`. */
  readonly tlsPort: number | undefined;
  /** `mqtts://host:port` of the TLS listener; undefined without `tls`. */
  readonly tlsUrl: string | undefined;
  readonly stats: Readonly<BrokerStats>;
  /** A new mqtt.js client connected without a socket, behind the same packet guard. */
  connectInMemory(options?: IClientOptions): MqttClient;
  /**
   * A session from this process without MQTT packets (aedes's bus and store
   * directly): for the embedded hub. It skips the authentication and ACL
   * hooks and has no Last Will.
   */
  connectInProcess(): InProcessClient;
  /** Serves one connection (socket, WebSocket stream, ...) behind the packet guard. */
  handle(conn: Duplex): void;
  /** Stops listening, cuts every connection and stops aedes's timers. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts an aedes broker with a packet size guard on every connection and,
 * unless `listen: false`, a TCP listener. Rejects with
 * EDGEFED_ERR_INSECURE_BIND when it would listen on a non-loopback host without
 * auth or `insecure`, EDGEFED_ERR_BROKER_OPTION for an invalid option,
 * EDGEFED_ERR_TLS (a TlsMaterialError) for unusable TLS material, and with the
 * listen error (EADDRINUSE, or EDGEFED_ERR_MQTTS_LISTEN for the mqtts port)
 * after stopping aedes again.
 */
export async function createBroker(options: BrokerOptions = {}): Promise<EdgefedBroker> {
  const opts = resolveBrokerOptions(options);
  if (opts.listen) {
    assertBindAllowed({ host: opts.host, insecure: opts.insecure, authConfigured: isAuthConfigured(opts) });
  }
  // Checked before aedes starts, so a wrong file leaves nothing to clean up.
  const tls = opts.listen && opts.tls ? serverTlsOptions(opts.tls) : undefined;
  const log = opts.logger.child({ component: 'broker' });
  // Also checks its limits, before aedes starts: a bad one leaves nothing to clean up.
  const gate = opts.listen ? createConnectionGate(gateOptions(opts), log) : undefined;
  const traffic = newTraffic();
  const persistence = indexedMemoryPersistence();
  let identifierRejected = 0;
  const idRule = clientIdRule(opts.authenticate, log, () => { identifierRejected += 1; });
  const aedes = await Aedes.createBroker({
    ...toAedesOptions({ ...opts, authorizeForward: countingForward(traffic, opts.authorizeForward) }, persistence),
    preConnect: idRule.preConnect,
    authenticate: idRule.authenticate,
  });
  let inProcessClients = 0;
  logAedesEvents(aedes, log);
  countPublishes(aedes, traffic);
  // Only a bounded bus queues messages, and only a queue can chain synchronous releases.
  if (opts.busConcurrency > 0) keepDeliveryAsync(aedes);

  const stats: BrokerStats = {
    packetGuardDrops: 0,
    tlsHandshakeFailures: 0,
    get identifierRejected() { return identifierRejected; },
    get connections() {
      return gate?.stats();
    },
    traffic,
    get clients() {
      return aedes.connectedClients + inProcessClients;
    },
  };
  const connections = new Set<Duplex>();
  let closing: Promise<void> | undefined;

  function handle(conn: Duplex): void {
    // A reconnecting in-memory client may knock after close(): turn it away.
    if (closing !== undefined) {
      conn.destroy();
      return;
    }
    const guarded = guardStream(conn, opts.maxPacketBytes, (violation) => {
      stats.packetGuardDrops += 1;
      logViolation(log, violation);
    }, traffic);
    // Tracked until closed: aedes only knows clients that sent CONNECT, and a
    // silent connection's connect timer would keep the process alive.
    connections.add(guarded);
    guarded.once('close', () => connections.delete(guarded));
    aedes.handle(guarded);
  }

  const listeners = opts.listen
    ? await startListeners(opts, tls, handle, gate!, stats, log).catch(async (error: unknown) => {
      gate?.close();
      await closeAedes(aedes);
      throw error;
    })
    : {};

  function close(): Promise<void> {
    closing ??= shutdown(listeners, connections, aedes).finally(() => gate?.close());
    return closing;
  }

  return {
    aedes,
    port: listeners.plain?.port,
    url: listeners.plain ? formatUrl('mqtt', opts.host, listeners.plain.port) : undefined,
    tlsPort: listeners.tls?.port,
    tlsUrl: listeners.tls ? formatUrl('mqtts', opts.host, listeners.tls.port) : undefined,
    stats,
    connectInMemory: (clientOptions?: IClientOptions) => connectInMemory(handle, clientOptions),
    connectInProcess: () => {
      inProcessClients += 1;
      return connectInProcess(aedes, persistence, () => { inProcessClients -= 1; });
    },
    handle,
    close,
  };
}

/** The broker options of the gate; the gate applies its own defaults to those left undefined. */
function gateOptions(opts: ResolvedBrokerOptions) {
  return {
    connectRatePerAddress: opts.connectRatePerAddress,
    connectBurstPerAddress: opts.connectBurstPerAddress,
    maxConnections: opts.maxConnections,
    exemptLoopback: opts.exemptLoopback,
  };
}

function isAuthConfigured(opts: ResolvedBrokerOptions): boolean {
  return opts.auth !== undefined || opts.authenticate !== undefined;
}

interface Listeners {
  plain?: TcpListener;
  tls?: TcpListener;
}

/** Plain first, then mqtts; if the second fails the first is closed again. */
async function startListeners(
  opts: ResolvedBrokerOptions,
  tls: TlsOptions | undefined,
  handle: (conn: Duplex) => void,
  gate: ConnectionGate,
  stats: BrokerStats,
  log: Logger,
): Promise<Listeners> {
  const plain = opts.plain ? await startPlainListener(opts, handle, gate, log) : undefined;
  if (tls === undefined) return { plain };
  try {
    return { plain, tls: await startTlsListener(opts, tls, handle, gate, stats, log) };
  } catch (error) {
    await plain?.close();
    throw error;
  }
}

function startPlainListener(opts: ResolvedBrokerOptions, handle: (conn: Duplex) => void, gate: ConnectionGate, log: Logger): Promise<TcpListener> {
  return listenTcp({
    host: opts.host,
    port: opts.port,
    admit: gate.admit,
    accept: handle,
    onError: (error) => log.error({ err: error.message }, 'tcp listener error'),
  });
}

function startTlsListener(
  opts: ResolvedBrokerOptions,
  tls: TlsOptions,
  handle: (conn: Duplex) => void,
  gate: ConnectionGate,
  stats: BrokerStats,
  log: Logger,
): Promise<TcpListener> {
  return listenTls({
    admit: gate.admit,
    host: opts.host,
    port: opts.tls?.port ?? DEFAULT_MQTTS_PORT,
    tls,
    handshakeTimeoutMs: opts.connectTimeoutMs,
    accept: handle,
    // debug, like other connection errors: a port scanner or a client without its certificate must not flood the log.
    onHandshakeError: (error, remote) => {
      stats.tlsHandshakeFailures += 1;
      log.debug({ remote: remote ?? 'unknown', err: error.message }, 'tls handshake failed');
    },
    onError: (error) => log.error({ err: error.message }, 'tls listener error'),
  });
}

async function shutdown(listeners: Listeners, connections: Set<Duplex>, aedes: Aedes): Promise<void> {
  await Promise.all([listeners.plain?.close(), listeners.tls?.close()]);
  for (const conn of connections) conn.destroy();
  // Clears aedes's heartbeat and will-sweep intervals, which keep the process alive.
  await closeAedes(aedes);
}

/**
 * mqemitter (aedes's message bus) overflows the stack when its queue is full
 * (concurrency 100, reached at a few thousand msg/s) and holds a run of
 * messages nobody subscribes to ($SYS/+/new/clients on every connect,
 * heartbeats while the hub is away): each one completes synchronously and
 * releases the next inside the same stack (mcollina/mqemitter#204, open).
 * A catch-all subscriber that completes on the next turn of the event loop
 * makes every delivery asynchronous, so the queue drains iteratively.
 */
function keepDeliveryAsync(aedes: Aedes): void {
  aedes.subscribe('#', (_packet, done) => setImmediate(done), () => undefined);
}

function closeAedes(aedes: Aedes): Promise<void> {
  return new Promise((resolve) => aedes.close(() => resolve()));
}


function logAedesEvents(aedes: Aedes, log: Logger): void {
  aedes.on('client', (client) => log.debug({ clientId: client.id, remote: remoteOf(client) }, 'client connected'));
  aedes.on('clientDisconnect', (client) =>
    log.debug({ clientId: client.id, remote: remoteOf(client) }, 'client disconnected'),
  );
  const logClientError = (client: Client, error: Error) => {
    // The guard already logged its cut at warn: one line per violation.
    if (error instanceof PacketGuardError) return;
    log.debug({ clientId: client.id ?? undefined, remote: remoteOf(client), err: error.message }, 'connection error');
  };
  aedes.on('clientError', logClientError);
  aedes.on('connectionError', logClientError);
  // aedes emits 'error' for persistence failures; unheard, it would crash the process.
  // Its typings omit the event, hence the plain EventEmitter view.
  const emitter: EventEmitter = aedes;
  emitter.on('error', (error: Error) => log.error({ err: error.message }, 'broker error'));
}

function logViolation(log: Logger, violation: PacketGuardViolation): void {
  log.warn(
    {
      remote: violation.remoteAddress ?? 'in-memory',
      reason: violation.reason,
      declaredBytes: violation.declaredBytes,
      maxPacketBytes: violation.maxPacketBytes,
      packetType: violation.packetType,
    },
    `packet guard cut a connection: ${describeViolation(violation)}`,
  );
}

function formatUrl(scheme: 'mqtt' | 'mqtts', host: string, port: number): string {
  // An IPv6 literal needs brackets in a URL authority.
  return host.includes(':') ? `${scheme}://[${host}]:${port}` : `${scheme}://${host}:${port}`;
}
