import type { AedesOptions } from 'aedes';
import { MAX_PACKET_BYTES } from '../lib/limits.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { TlsMaterial } from '../lib/tls-material.js';
import { EdgefedError } from '../lib/errors.js';

/*
 * Hooks that can veto (authenticate, authorize*) are passed through to aedes
 * with its own signatures; see node_modules/aedes/types/instance.d.ts.
 */

/**
 * Decides a CONNECT. Call `done(null, true)` to accept; to refuse, call
 * `done(err, false)` with `err.returnCode` set to the CONNACK code as a number
 * literal (2 identifier rejected, 3 server unavailable, 4 bad user name or
 * password, 5 not authorized): aedes's `AuthErrorCode` enum exists only in its types.
 */
export type AuthenticateHook = NonNullable<AedesOptions['authenticate']>;
/**
 * Decides each inbound PUBLISH (and each Will, with `client` null when its
 * owner is gone). An error closes the client. `$SYS/` is refused before this runs.
 */
export type AuthorizePublishHook = NonNullable<AedesOptions['authorizePublish']>;
/** Decides each subscription: `cb(null, sub)` grants, `cb(null, null)` gives SUBACK 0x80. */
export type AuthorizeSubscribeHook = NonNullable<AedesOptions['authorizeSubscribe']>;
/** Synchronous: returns the packet to deliver to `client`, or null/undefined to skip it. */
export type AuthorizeForwardHook = NonNullable<AedesOptions['authorizeForward']>;

/** An mqtts listener beside (or, with `plain: false`, instead of) the plain one. */
export interface BrokerTlsOptions extends TlsMaterial {
  /** mqtts port (default 8883); 0 picks an ephemeral port (read it back from `EdgefedBroker.tlsPort`). */
  port?: number;
}

export interface BrokerOptions {
  /**
   * Address the TCP listener binds. Without auth only a loopback address
   * (127.0.0.0/8, ::1, localhost) is allowed unless `insecure` is set.
   */
  host?: string;
  /** TCP port; 0 picks an ephemeral port (read it back from `EdgefedBroker.port`). */
  port?: number;
  /** False runs the broker in memory only (no TCP listener): connect with `connectInMemory()`. */
  listen?: boolean;
  /**
   * Adds an mqtts listener on `host` with this certificate and key; a `ca`
   * turns on mutual TLS (clients without a certificate it signed are refused
   * in the handshake). Ignored with `listen: false`.
   */
  tls?: BrokerTlsOptions;
  /** False turns the plain MQTT listener off, leaving only mqtts (needs `tls`). */
  plain?: boolean;
  /**
   * Largest MQTT packet accepted, fixed header included. A larger one cuts the
   * connection as soon as its header arrives (aedes itself has no limit).
   */
  maxPacketBytes?: number;
  /** Allows a non-loopback `host` without auth (the `--insecure` flag): for trusted networks only. */
  insecure?: boolean;
  /**
   * Reserved for the authentication config, whose design is not settled:
   * must be left undefined for now. Use `authenticate` meanwhile.
   */
  auth?: undefined;
  /** Veto hook for CONNECT; supplying it counts as "auth configured" for the bind rule. */
  authenticate?: AuthenticateHook;
  /** Veto hook for inbound PUBLISH; `$SYS/` topics are refused before it is called. */
  authorizePublish?: AuthorizePublishHook;
  /** Veto hook for SUBSCRIBE. */
  authorizeSubscribe?: AuthorizeSubscribeHook;
  /** Per-recipient filter on outbound delivery. */
  authorizeForward?: AuthorizeForwardHook;
  /**
   * Interval of aedes's `$SYS/<id>/heartbeat`. Also paces clustering: a
   * broker silent for 3 intervals is presumed dead and its clients' Wills fire.
   */
  heartbeatIntervalMs?: number;
  /** How long a new connection may take to send CONNECT before it is dropped. */
  connectTimeoutMs?: number;
  /**
   * Messages in flight on aedes's internal bus before new ones queue; 0 = no
   * bound. aedes defaults to 100, and its queue is an array drained with
   * shift(): at 5,000 heartbeats/s the queue grew without end and shift()
   * took 70% of the CPU. Unbounded is safe because aedes reads a client's
   * next packets only after its current ones are delivered, so in-flight
   * messages stay bounded by the number of connections.
   */
  busConcurrency?: number;
  /**
   * Connects per second one remote address may sustain on the TCP and TLS
   * listeners (a token bucket); 0 = no per-address limit. Default 20.
   * A connect over the limit is closed at accept, before any MQTT or TLS.
   */
  connectRatePerAddress?: number;
  /** Connects one address may make in a burst before its rate applies. Default 50. */
  connectBurstPerAddress?: number;
  /** Open connections over all listeners; 0 = no limit. In-memory connections do not count. Default 10,000. */
  maxConnections?: number;
  /** Loopback peers skip the per-address limit (`edgefed simulate`, benchmarks). Default true. */
  exemptLoopback?: boolean;
  /** Where connection events (debug) and guard violations (warn) go. */
  logger?: Logger;
}

type Defaulted = 'host' | 'port' | 'listen' | 'plain' | 'maxPacketBytes' | 'insecure' | 'heartbeatIntervalMs' | 'connectTimeoutMs' | 'busConcurrency' | 'logger';

/** Options after defaults are applied: every defaulted field is present. */
export type ResolvedBrokerOptions = Omit<BrokerOptions, Defaulted> & Required<Pick<BrokerOptions, Defaulted>>;

/** The IANA port of MQTT over TLS. */
export const DEFAULT_MQTTS_PORT = 8883;

/** The one place broker defaults live. Timings match aedes's own defaults. */
export const defaultBrokerOptions: Readonly<Required<Pick<BrokerOptions, Defaulted>>> = Object.freeze({
  host: '127.0.0.1',
  port: 1883,
  listen: true,
  plain: true,
  maxPacketBytes: MAX_PACKET_BYTES,
  insecure: false,
  heartbeatIntervalMs: 60_000,
  connectTimeoutMs: 30_000,
  busConcurrency: 0,
  logger: silentLogger,
});

export const BROKER_OPTION_CODE = 'EDGEFED_ERR_BROKER_OPTION';

/** Applies defaults (an explicit `undefined` also takes the default) and validates. */
export function resolveBrokerOptions(options: BrokerOptions): ResolvedBrokerOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const resolved = { ...defaultBrokerOptions, ...given } as ResolvedBrokerOptions;
  if (typeof resolved.host !== 'string' || resolved.host.trim() === '') {
    throw new EdgefedError(BROKER_OPTION_CODE, `host must be a non-empty address or name, got ${JSON.stringify(resolved.host)}`);
  }
  checkInteger('port', resolved.port, 0, 65_535);
  if (resolved.tls?.port !== undefined) checkInteger('tls.port', resolved.tls.port, 0, 65_535);
  if (resolved.listen && !resolved.plain && resolved.tls === undefined) {
    throw new EdgefedError(BROKER_OPTION_CODE, `plain: false turns off the only listener; give tls (--tls-cert/--tls-key) or keep the plain listener`);
  }
  // 2 bytes is the smallest MQTT packet (PINGREQ); the 4-byte length field caps the largest.
  checkInteger('maxPacketBytes', resolved.maxPacketBytes, 2, 268_435_460);
  checkInteger('heartbeatIntervalMs', resolved.heartbeatIntervalMs, 1, 2 ** 31 - 1);
  checkInteger('connectTimeoutMs', resolved.connectTimeoutMs, 1, 2 ** 31 - 1);
  checkInteger('busConcurrency', resolved.busConcurrency, 0, 1_000_000);
  return resolved;
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return;
  throw new EdgefedError(BROKER_OPTION_CODE, `${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
}
