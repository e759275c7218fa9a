/**
 * The aedes hooks that make the broker enforce identities: `authenticate`
 * verifies the JWT a client presents as its password (once per CONNECT) and
 * remembers who it is; `authorizePublish` / `authorizeSubscribe` ask the ACL
 * (./acl.ts) about every packet. Verdicts are logged (throttled, never the
 * token) and counted for /health.
 */
import type { AuthenticateError, Client } from 'aedes';
import { TokenError, type Identity, type TokenRefusalCode, type Verifier } from '../auth/types.js';
import { ID_PATTERN } from '../lib/ids.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { createAcl, type Acl, type PublishRefusal, type SubscribeRefusal, type Verdict } from './acl.js';
import type { AuthenticateHook, AuthorizePublishHook, AuthorizeSubscribeHook } from './options.js';
import { remoteOf } from './packet-guard.js';
import { closeAtExpiry } from './session-expiry.js';

/** Why a CONNECT was refused: the verifier's codes plus the broker's own checks. */
export type AuthFailureCode =
  | TokenRefusalCode
  /** No username or no password: nothing to verify. */
  | 'no_credentials'
  /** The username is not the token's subject (nor, for operator / hub, the role's name). */
  | 'username_mismatch'
  /** An agent token used with a client id other than its node id. */
  | 'client_id_mismatch'
  /** A live session holds this client id and the token is not one for that id. */
  | 'takeover_refused'
  /** A signed identity that could still escape its topics (see Acl.identityFlaw). */
  | 'invalid_identity'
  /** The verifier failed for another reason than the token (e.g. a JWKS fetch): CONNACK 3. */
  | 'verifier_unavailable';

/** CONNACK return codes of MQTT 3.1.1 (aedes's AuthErrorCode is a const enum, absent at runtime). */
type ConnackRefusal = 3 | 4 | 5;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/**
 * 4 when what was presented is not a credential of ours at all; 5 when it is
 * one but does not authorise this connection (now, here, for this id).
 */
const CONNACK_OF: Record<AuthFailureCode, ConnackRefusal> = {
  no_credentials: BAD_USERNAME_OR_PASSWORD,
  malformed: BAD_USERNAME_OR_PASSWORD,
  bad_signature: BAD_USERNAME_OR_PASSWORD,
  bad_algorithm: BAD_USERNAME_OR_PASSWORD,
  unknown_key: BAD_USERNAME_OR_PASSWORD,
  username_mismatch: BAD_USERNAME_OR_PASSWORD,
  expired: NOT_AUTHORIZED,
  not_yet_valid: NOT_AUTHORIZED,
  wrong_issuer: NOT_AUTHORIZED,
  wrong_audience: NOT_AUTHORIZED,
  bad_claims: NOT_AUTHORIZED,
  client_id_mismatch: NOT_AUTHORIZED,
  takeover_refused: NOT_AUTHORIZED,
  invalid_identity: NOT_AUTHORIZED,
  verifier_unavailable: SERVER_UNAVAILABLE,
  // The JWKS URL is down: CONNACK 3 tells the client to retry, not that its token is bad.
  keys_unavailable: SERVER_UNAVAILABLE,
};

/**
 * A refused PUBLISH is rewritten to this topic, emptied and unretained, then
 * let through, so aedes acknowledges it (PUBACK / PUBREC) and delivers it to
 * nobody: `$` topics never match a wildcard filter [MQTT-4.7.2-1] (aedes
 * enforces it) and the ACL grants no filter outside the federation namespace.
 */
export const REFUSED_PUBLISH_SINK = '$edgefed/refused';

export interface AuthHooksOptions {
  /** Verifies the JWT each client presents as its MQTT password. */
  verifier: Verifier;
  /** The topic root the rules apply to; default `edgefed/v1`. */
  topicRoot?: string;
  /** Where refusals go (warn, throttled) and accepted connects (debug). */
  logger?: Logger;
  /** At most one warn line per kind of refusal (auth, publish, subscribe) per interval; default 10 s. */
  warnIntervalMs?: number;
  /**
   * Runs only for publishes the ACL allows, with the same arguments (e.g. the
   * embedded hub's retain gate); without it an allowed publish is accepted.
   */
  next?: AuthorizePublishHook;
}

/** Counters since start; the object is live (read it any time, e.g. for /health). */
export interface AuthStats {
  connectsAccepted: number;
  /** Sessions the broker closed because their token expired. */
  sessionsExpired: number;
  authFailures: Partial<Record<AuthFailureCode, number>>;
  publishRefusals: Partial<Record<PublishRefusal, number>>;
  subscribeRefusals: Partial<Record<SubscribeRefusal, number>>;
}

export interface AuthHooks {
  authenticate: AuthenticateHook;
  authorizePublish: AuthorizePublishHook;
  authorizeSubscribe: AuthorizeSubscribeHook;
  readonly stats: Readonly<AuthStats>;
  /** The verified identity of a connected client (undefined before CONNECT succeeded). */
  identityOf(client: Client): Identity | undefined;
  /** Writes any pending throttled summary and stops its timers. */
  close(): void;
}

type Decision = { ok: true; identity: Identity } | { ok: false; code: AuthFailureCode; reason: string };

/**
 * Builds the three hooks around one ACL, one identity table and one set of
 * counters. Pass them to createBroker; call `close()` when the broker stops.
 */
export function createAuthHooks(options: AuthHooksOptions): AuthHooks {
  const acl = createAcl(options.topicRoot);
  const log = (options.logger ?? silentLogger).child({ component: 'broker-auth' });
  const interval = options.warnIntervalMs ?? 10_000;
  const stats: AuthStats = { connectsAccepted: 0, sessionsExpired: 0, authFailures: {}, publishRefusals: {}, subscribeRefusals: {} };
  const identities = new WeakMap<Client, Identity>();
  const sessions = new SessionTable();
  const authWarn = new ThrottledWarn(log, 'connection refused', interval);
  const publishWarn = new ThrottledWarn(log, 'publish refused and dropped', interval);
  const subscribeWarn = new ThrottledWarn(log, 'subscription refused', interval);
  const expiryLog = new ThrottledWarn(log, 'session closed: its token expired', interval);

  async function decide(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Decision> {
    if (!username || !password || password.length === 0) {
      return { ok: false, code: 'no_credentials', reason: 'a username and a token as password are required' };
    }
    let identity: Identity;
    try {
      identity = await options.verifier.verify(password.toString('utf8'));
    } catch (error) {
      if (error instanceof TokenError) return { ok: false, code: error.code, reason: error.message };
      return { ok: false, code: 'verifier_unavailable', reason: error instanceof Error ? error.message : String(error) };
    }
    return checkIdentity(acl, sessions, client, username, identity);
  }

  const authenticate: AuthenticateHook = (client, username, password, done) => {
    decide(client, username, password)
      .catch((error: unknown): Decision => ({ ok: false, code: 'verifier_unavailable', reason: String(error) }))
      .then((decision) => {
        if (decision.ok) {
          accept(client, decision.identity);
          done(null, true);
          return;
        }
        // The message may quote the token (a verifier's error text, a username pasted with it): scrub it.
        const reason = scrub(decision.reason, password);
        stats.authFailures[decision.code] = (stats.authFailures[decision.code] ?? 0) + 1;
        authWarn.warn(decision.code, { code: decision.code, reason, clientId: loggable(client.id), username: loggable(username), remote: remoteOf(client) });
        done(refusal(decision.code, reason), false);
      })
      // A throw from aedes's callback must not become an unhandled rejection (which ends the process).
      .catch((error: unknown) => log.error({ err: String(error) }, 'authenticate callback failed'));
  };

  function accept(client: Client, identity: Identity): void {
    identities.set(client, identity);
    // aedes skips a client closed while we verified; so must the table.
    if (!client.closed) {
      sessions.hold(client, identity);
      closeAtExpiry(client, identity.acceptedUntil, () => {
        stats.sessionsExpired += 1;
        expiryLog.warn('expired', { clientId: loggable(client.id), role: identity.role, subject: identity.subject, kid: identity.kid });
      });
    }
    stats.connectsAccepted += 1;
    log.debug({ clientId: client.id, role: identity.role, subject: identity.subject, kid: identity.kid }, 'client authenticated');
  }

  function publishVerdict(client: Client | null, topic: string, payload: Buffer, orphanOwner: string | undefined): Verdict<PublishRefusal> {
    if (client === null) return acl.mayPublishOrphanWill(orphanOwner, topic);
    const identity = identities.get(client);
    return identity ? acl.mayPublish(identity, topic, payload) : { ok: false, reason: 'no_identity' };
  }

  /*
   * Refused publishes are dropped, not answered by a disconnect. MQTT 3.1.1
   * has no negative PUBACK, and aedes closes the client on an authorizePublish
   * error; mqtt.js then reconnects and resends its unacknowledged QoS 1
   * message, so one bad message would cut a node off for good (its heartbeats
   * and results included) in a reconnect loop. Dropping keeps the rest of the
   * node's traffic flowing; the refusal is logged and counted here, and the
   * acknowledgement (allowed by 3.1.1) stops the resending. The hub never sees
   * a dropped message, so nothing in the registry changes.
   */
  const authorizePublish: AuthorizePublishHook = (client, packet, callback) => {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const verdict = publishVerdict(client, packet.topic, payload, orphanOwnerOf(packet));
    if (verdict.ok) {
      if (options.next) options.next(client, packet, callback);
      else callback(null);
      return;
    }
    stats.publishRefusals[verdict.reason] = (stats.publishRefusals[verdict.reason] ?? 0) + 1;
    const identity = client ? identities.get(client) : undefined;
    publishWarn.warn(verdict.reason, {
      reason: verdict.reason, topic: bounded(packet.topic), qos: packet.qos, retain: packet.retain,
      clientId: client ? loggable(client.id) : undefined, role: identity?.role, subject: identity?.subject,
    });
    packet.topic = REFUSED_PUBLISH_SINK;
    packet.payload = Buffer.alloc(0);
    packet.retain = false;
    callback(null);
  };

  const authorizeSubscribe: AuthorizeSubscribeHook = (client, subscription, callback) => {
    const identity = identities.get(client);
    const verdict: Verdict<SubscribeRefusal> = identity ? acl.maySubscribe(identity, subscription.topic) : { ok: false, reason: 'no_identity' };
    if (verdict.ok) {
      callback(null, subscription);
      return;
    }
    stats.subscribeRefusals[verdict.reason] = (stats.subscribeRefusals[verdict.reason] ?? 0) + 1;
    subscribeWarn.warn(verdict.reason, {
      reason: verdict.reason, filter: bounded(subscription.topic),
      clientId: loggable(client.id), role: identity?.role, subject: identity?.subject,
    });
    // null, not an error: SUBACK 0x80 for this filter, and the connection stays up.
    callback(null, null);
  };

  return {
    authenticate,
    authorizePublish,
    authorizeSubscribe,
    stats,
    identityOf: (client) => identities.get(client),
    close() {
      authWarn.close();
      publishWarn.close();
      subscribeWarn.close();
      expiryLog.close();
    },
  };
}

/** The checks that need the connection as well as the token. */
function checkIdentity(acl: Acl, sessions: SessionTable, client: Client, username: string, identity: Identity): Decision {
  const flaw = acl.identityFlaw(identity);
  if (flaw !== undefined) return { ok: false, code: 'invalid_identity', reason: flaw };
  if (!usernameFits(identity, username)) {
    return { ok: false, code: 'username_mismatch', reason: `username does not match the token's ${identity.role} subject` };
  }
  if (!acl.mayUseClientId(identity, client.id)) {
    return { ok: false, code: 'client_id_mismatch', reason: 'an agent token connects only with its node id as client id' };
  }
  // aedes closes the older session with this id only after authenticate
  // succeeds, so refusing here leaves it untouched.
  const holder = sessions.holderOf(client);
  if (holder !== undefined && !acl.mayTakeOver(identity, holder, client.id)) {
    return { ok: false, code: 'takeover_refused', reason: `client id is held by a live ${holder.role} session the token is not for` };
  }
  return { ok: true, identity };
}

/** Agents name themselves by node id; operators and hubs by subject or by role. */
function usernameFits(identity: Identity, username: string): boolean {
  if (username === identity.subject) return true;
  return identity.role !== 'agent' && username === identity.role;
}

/** The CONNACK error aedes turns into a refusal and a closed connection. */
function refusal(code: AuthFailureCode, reason: string): AuthenticateError {
  return Object.assign(new Error(`${code}: ${reason}`), { returnCode: CONNACK_OF[code] }) as AuthenticateError;
}

/**
 * The identity behind each live client id, to decide takeovers. An entry
 * lives as long as its connection: a closed stream removes it, unless a
 * newer client holds the id by then.
 */
class SessionTable {
  readonly #live = new Map<string, { client: Client; identity: Identity }>();

  holderOf(client: Client): Identity | undefined {
    const entry = this.#live.get(client.id);
    if (entry === undefined || entry.client === client || entry.client.closed) return undefined;
    return entry.identity;
  }

  hold(client: Client, identity: Identity): void {
    const id = client.id;
    this.#live.set(id, { client, identity });
    client.conn.once('close', () => {
      if (this.#live.get(id)?.client === client) this.#live.delete(id);
    });
  }
}

/**
 * At most one warn line per interval: the first refusal is logged at once,
 * later ones within the interval are only counted, and a summary with those
 * counts follows when the interval ends. A storm of 1,000 bad passwords
 * costs one or two lines, not 1,000.
 */
class ThrottledWarn {
  #lastAt = Number.NEGATIVE_INFINITY;
  #suppressed = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger, private readonly message: string, private readonly intervalMs: number) {}

  warn(key: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.#lastAt >= this.intervalMs) {
      this.#lastAt = now;
      this.log.warn(fields, this.message);
      return;
    }
    this.#suppressed.set(key, (this.#suppressed.get(key) ?? 0) + 1);
    // The summary goes out when the interval ends, even if the storm stopped.
    this.#timer ??= setTimeout(() => this.#flush(), this.#lastAt + this.intervalMs - now).unref();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#flush();
  }

  #flush(): void {
    this.#timer = undefined;
    if (this.#suppressed.size === 0) return;
    const byKey = Object.fromEntries(this.#suppressed);
    const suppressed = [...this.#suppressed.values()].reduce((sum, n) => sum + n, 0);
    this.#suppressed.clear();
    this.#lastAt = Date.now();
    this.log.warn({ suppressed, byKey, intervalMs: this.intervalMs }, `${this.message} (${suppressed} more, suppressed)`);
  }
}

/** Owner of a Will fired with no client: aedes's stored Will keeps its client id. */
function orphanOwnerOf(packet: object): string | undefined {
  const owner: unknown = (packet as { clientId?: unknown }).clientId;
  return typeof owner === 'string' ? owner : undefined;
}

/**
 * Client ids and usernames are untrusted and someone may paste the token
 * there: an id-shaped value is logged, anything else only by its length
 * (a JWT is never id-shaped: too long, and ids have no room for its parts).
 */
function loggable(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value === '' || ID_PATTERN.test(value) ? value : `<${value.length} chars, not id-shaped>`;
}

function bounded(text: string, max = 256): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

function scrub(reason: string, password: Buffer | undefined): string {
  const token = password && password.length > 0 ? password.toString('utf8') : undefined;
  const clean = token ? reason.split(token).join('<token>') : reason;
  return bounded(clean, 512);
}

