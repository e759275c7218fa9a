import type { Logger } from '../lib/log.js';
import { isLoopbackHost } from './bind-policy.js';
import { BROKER_OPTION_CODE } from './options.js';
import { EdgefedError } from '../lib/errors.js';

/**
 * The accept-path gate of the broker's listeners: a per-address connect-rate
 * limit (token bucket) and a global connection limit. A refused socket is
 * destroyed before a single byte of it reaches the packet guard or aedes, so
 * a connect flood costs an accept and a close, not a parser and a client
 * object with a connect timer of its own (30 s by default) each.
 *
 * Call `admit(socket)` first thing in a listener's connection handler, and
 * hand the socket on only when it returns true. For TLS, call it on the raw
 * TCP socket before the handshake, so a refused flood costs no crypto. One
 * gate is shared by every listener of a broker (plain and TLS) so
 * `maxConnections` is global. In-memory connections (the hub's own client)
 * never pass through it.
 */

export interface ConnectionGateOptions {
  /**
   * Connects per second one remote address may sustain (the bucket's refill
   * rate); 0 turns the per-address limit off. Fractions are allowed.
   */
  connectRatePerAddress?: number;
  /** Connects one address may make in a burst (the bucket's size). */
  connectBurstPerAddress?: number;
  /** Open connections over all listeners and addresses; 0 = no limit. */
  maxConnections?: number;
  /**
   * Loopback peers (127.0.0.0/8, ::1, ::ffff:127.x) skip the per-address
   * limit, so `edgefed simulate` and the benchmarks can open thousands of
   * connections from one host. They still count toward `maxConnections`.
   */
  exemptLoopback?: boolean;
  /**
   * Addresses whose buckets are remembered at most. Past it the least
   * recently seen is forgotten: that address gets a full bucket back, which a
   * flood from more addresses than this could already get anyway, while the
   * table (about 100 bytes an entry) stays bounded.
   */
  maxTrackedAddresses?: number;
  /** A refusal reason is logged at most once per interval, with the count of those not logged. */
  logIntervalMs?: number;
  /** Monotonic clock in ms, for tests. */
  now?: () => number;
}

type Defaulted = Exclude<keyof ConnectionGateOptions, 'now'>;

/** Defaults of the gate; the broker options of the same names take them. */
export const defaultConnectionLimits: Readonly<Required<Pick<ConnectionGateOptions, Defaulted>>> = Object.freeze({
  connectRatePerAddress: 20,
  connectBurstPerAddress: 50,
  maxConnections: 10_000,
  exemptLoopback: true,
  maxTrackedAddresses: 10_000,
  logIntervalMs: 10_000,
});

/** Why a connection was refused; the stats and log lines use these names. */
export type RefusalReason = 'rate' | 'max-connections';

export interface ConnectionGateStats {
  /** Connections admitted and not yet closed. */
  open: number;
  /** Connections admitted since start. */
  admitted: number;
  /** Connections destroyed at accept since start, by reason. */
  refused: Record<RefusalReason, number>;
  /** Per-address buckets held now (bounded by `maxTrackedAddresses`). */
  trackedAddresses: number;
  /** Buckets forgotten because the table was full (not because they were idle). */
  evictedAddresses: number;
}

/** The little a gate needs from a socket; `net.Socket` and `tls.TLSSocket` fit. */
export interface GatedSocket {
  readonly remoteAddress?: string | undefined;
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

export interface ConnectionGate {
  /** True: serve the socket. False: it was destroyed already; drop it. */
  admit(socket: GatedSocket): boolean;
  /** A snapshot of the counters. */
  stats(): ConnectionGateStats;
  /** Logs pending refusal summaries, stops the log timers and forgets the buckets. Later sockets are refused. Idempotent. */
  close(): void;
}

export function createConnectionGate(options: ConnectionGateOptions, log: Logger): ConnectionGate {
  const limits = resolveLimits(options);
  const now = options.now ?? (() => performance.now());
  const buckets = new AddressBuckets(limits, now);
  const refusals = new RefusalLog(log, limits.logIntervalMs);
  const counts = { open: 0, admitted: 0, refused: { rate: 0, 'max-connections': 0 } };
  let closed = false;

  function refuse(socket: GatedSocket, reason: RefusalReason, address: string): false {
    socket.destroy();
    counts.refused[reason] += 1;
    refusals.note(reason, address, describeLimit(reason, limits));
    return false;
  }

  function admit(socket: GatedSocket): boolean {
    // A peer that reset before we got to it has no address left: nothing to serve or count.
    const address = canonicalAddress(socket.remoteAddress);
    if (closed || address === undefined) {
      socket.destroy();
      return false;
    }
    // The global check first: it costs nothing and leaves the bucket table alone under a flood.
    if (limits.maxConnections > 0 && counts.open >= limits.maxConnections) return refuse(socket, 'max-connections', address);
    if (isRateLimited(address) && !buckets.take(address)) return refuse(socket, 'rate', address);
    counts.open += 1;
    counts.admitted += 1;
    socket.once('close', () => {
      counts.open -= 1;
    });
    return true;
  }

  function isRateLimited(address: string): boolean {
    if (limits.connectRatePerAddress === 0) return false;
    return !(limits.exemptLoopback && isLoopbackHost(address));
  }

  return {
    admit,
    stats: () => ({
      open: counts.open,
      admitted: counts.admitted,
      refused: { ...counts.refused },
      trackedAddresses: buckets.size,
      evictedAddresses: buckets.evicted,
    }),
    close() {
      if (closed) return;
      closed = true;
      refusals.close();
      buckets.clear();
    },
  };
}

type Limits = Required<Pick<ConnectionGateOptions, Defaulted>>;

function resolveLimits(options: ConnectionGateOptions): Limits {
  const given = Object.fromEntries(Object.entries(options).filter(([key, value]) => value !== undefined && key !== 'now'));
  const limits = { ...defaultConnectionLimits, ...given } as Limits;
  checkNumber('connectRatePerAddress', limits.connectRatePerAddress, 0, 1_000_000, false);
  checkNumber('connectBurstPerAddress', limits.connectBurstPerAddress, 1, 1_000_000, true);
  checkNumber('maxConnections', limits.maxConnections, 0, 10_000_000, true);
  checkNumber('maxTrackedAddresses', limits.maxTrackedAddresses, 1, 10_000_000, true);
  checkNumber('logIntervalMs', limits.logIntervalMs, 1, 2 ** 31 - 1, true);
  if (typeof limits.exemptLoopback !== 'boolean') {
    throw new EdgefedError(BROKER_OPTION_CODE, `exemptLoopback must be true or false, got ${String(limits.exemptLoopback)}`);
  }
  return limits;
}

function checkNumber(name: string, value: unknown, min: number, max: number, integer: boolean): void {
  const ok = typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max;
  if (ok && (!integer || Number.isInteger(value))) return;
  const kind = integer ? 'an integer' : 'a number';
  throw new EdgefedError(BROKER_OPTION_CODE, `${name} must be ${kind} in [${min}, ${max}], got ${String(value)}`);
}

/**
 * A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`; without this
 * one host would have two buckets depending on the listener that took it.
 */
function canonicalAddress(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1] : address;
}

function describeLimit(reason: RefusalReason, limits: Limits): Record<string, number> {
  return reason === 'rate'
    ? { connectRatePerAddress: limits.connectRatePerAddress, connectBurstPerAddress: limits.connectBurstPerAddress }
    : { maxConnections: limits.maxConnections };
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms of the gate's clock). */
  updatedAt: number;
}

/**
 * Token buckets by address, in a Map kept in least-recently-touched order
 * (an entry is re-inserted on every take). That order makes both kinds of
 * forgetting cheap: idle buckets are at the front, and so is the one to
 * evict when the table is full. No timer is needed to keep it small.
 */
class AddressBuckets {
  private readonly table = new Map<string, Bucket>();
  /** After this long untouched a bucket is full again, the same as no bucket. */
  private readonly refillMs: number;
  evicted = 0;

  constructor(
    private readonly limits: Limits,
    private readonly now: () => number,
  ) {
    this.refillMs = (limits.connectBurstPerAddress / limits.connectRatePerAddress) * 1000;
  }

  get size(): number {
    return this.table.size;
  }

  /** Takes one token from `address`'s bucket; false when it is empty. */
  take(address: string): boolean {
    const at = this.now();
    this.forgetIdle(at);
    const bucket = this.table.get(address) ?? this.fresh(at);
    this.refill(bucket, at);
    // Re-insert to move it to the back: most recently touched.
    this.table.delete(address);
    this.table.set(address, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  clear(): void {
    this.table.clear();
  }

  private fresh(at: number): Bucket {
    if (this.table.size >= this.limits.maxTrackedAddresses) this.evictOldest();
    return { tokens: this.limits.connectBurstPerAddress, updatedAt: at };
  }

  private refill(bucket: Bucket, at: number): void {
    const earned = ((at - bucket.updatedAt) / 1000) * this.limits.connectRatePerAddress;
    bucket.tokens = Math.min(this.limits.connectBurstPerAddress, bucket.tokens + earned);
    bucket.updatedAt = at;
  }

  private forgetIdle(at: number): void {
    for (const [address, bucket] of this.table) {
      if (at - bucket.updatedAt < this.refillMs) return;
      this.table.delete(address);
    }
  }

  private evictOldest(): void {
    const oldest = this.table.keys().next();
    if (oldest.done === true) return;
    this.table.delete(oldest.value);
    this.evicted += 1;
  }
}

interface Window {
  suppressed: number;
  lastAddress: string;
  timer: NodeJS.Timeout;
}

/**
 * One warn line when a refusal reason first shows up, then at most one
 * summary per interval while refusals go on: a flood of thousands of sockets
 * a second must not become thousands of log lines a second.
 */
class RefusalLog {
  private readonly windows = new Map<RefusalReason, Window>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  note(reason: RefusalReason, address: string, limit: Record<string, number>): void {
    const open = this.windows.get(reason);
    if (open !== undefined) {
      open.suppressed += 1;
      open.lastAddress = address;
      return;
    }
    this.log.warn({ reason, remote: address, ...limit }, `connection refused at accept: ${describeReason(reason)}`);
    this.openWindow(reason, address);
  }

  close(): void {
    for (const reason of [...this.windows.keys()]) this.endWindow(reason, false);
  }

  private openWindow(reason: RefusalReason, address: string): void {
    const timer = setTimeout(() => this.endWindow(reason, true), this.intervalMs);
    // A summary still to come must not keep a stopping process alive; close() flushes it.
    timer.unref();
    this.windows.set(reason, { suppressed: 0, lastAddress: address, timer });
  }

  /** Logs what the window held back; while refusals keep coming, the next window opens at once. */
  private endWindow(reason: RefusalReason, reopen: boolean): void {
    const window = this.windows.get(reason);
    if (window === undefined) return;
    clearTimeout(window.timer);
    this.windows.delete(reason);
    if (window.suppressed === 0) return;
    this.log.warn(
      { reason, suppressed: window.suppressed, intervalMs: this.intervalMs, lastRemote: window.lastAddress },
      `${window.suppressed} more connections refused at accept (${describeReason(reason)}) not logged one by one`,
    );
    if (reopen) this.openWindow(reason, window.lastAddress);
  }
}

function describeReason(reason: RefusalReason): string {
  return reason === 'rate' ? 'too many connects from one address' : 'too many open connections';
}
