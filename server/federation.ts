/**
 * Everything `edgefed start` runs, as a library call: the embedded broker (or
 * a connection to an external one), the hub, and its HTTP API, wired so that
 * the broker never retains a payload the hub would refuse.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Adapter } from 'lowdb';
import { assertBindAllowed } from '../broker/bind-policy.js';
import { createBroker, type BrokerOptions, type BrokerTlsOptions, type EdgefedBroker } from '../broker/index.js';
import { jsonLogger, type Logger } from '../lib/log.js';
import { serverTlsOptions } from '../lib/tls-material.js';
import { DEFAULT_TOPIC_ROOT, topics } from '../lib/topics.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../hub/admission.js';
import { MAX_PACKET_BYTES } from '../lib/limits.js';
import { startHttpApi, type HttpApi, type HttpApiOptions } from './http/server.js';
import { createHub, type Hub, type HubApi, type HubOptions } from '../hub/index.js';
import { makeRetainGate } from '../hub/retain-gate.js';
import { inProcessTransport } from './in-process-link.js';
import { createAuthHooks, type AuthHooks } from '../broker/auth-hooks.js';
import type { AuthorizePublishHook } from '../broker/options.js';
import type { Verifier } from '../auth/types.js';
import { prepareJwtAuth, type JwtAuth, type JwtAuthOptions } from './federation-auth.js';
import type { RegistryFile } from '../hub/store/registry-file.js';
import { openStore } from '../hub/store/open.js';
import { isPostgresUrl } from '../hub/store/pg/connection.js';
import { defaultHubId } from './ha/hub-id.js';
import { HubSupervisor } from './ha/supervisor.js';
import type { Store } from '../hub/store/types.js';
import { EdgefedError } from '../lib/errors.js';

export interface FederationOptions {
  /** Address the broker and the API listen on (default 127.0.0.1). */
  bind?: string;
  /** Allow a non-loopback `bind` without authentication. */
  insecure?: boolean;
  /** Embedded broker's MQTT port (default 1883; 0 = any free port). */
  mqttPort?: number;
  /** false = no TCP listener for the embedded broker (in-memory only, for tests). */
  mqttListen?: boolean;
  /** HTTP API port (default 8080; 0 = any free port). */
  httpPort?: number;
  /** Data dir of the registry (required unless `adapter` or `store`), the lock and the auth keys. */
  dataDir?: string;
  /**
   * Where the hub keeps its state: a `postgres://` URL (`--store`), or a Store
   * of the embedder's. Default: the lowdb files in `dataDir`. A URL makes the
   * hub one of an active/standby group on that database (`ha`).
   */
  store?: Store | string;
  /** HA with a postgres:// store: this hub's name in the lease (default: host name and a hash of the data dir), lease timing. */
  ha?: { hubId?: string; ttlMs?: number; renewMs?: number };
  adapter?: Adapter<RegistryFile>;
  /**
   * Use this external broker instead of the embedded one. The hub holds a
   * persistent session there (`hub.persistentSession`, `hub.clientId`), so the
   * broker queues what nodes publish while the hub is away.
   */
  brokerUrl?: string;
  topicRoot?: string;
  maxPacketBytes?: number;
  maxPayloadBytes?: number;
  logger?: Logger;
  /** Extra hub options (timers, throttles) for tests and tuning. */
  hub?: Partial<Omit<HubOptions, 'connect' | 'transport' | 'dataDir' | 'adapter' | 'topicRoot' | 'logger' | 'maxPayloadBytes'>>;
  /** Extra broker options (hooks for authentication come here). */
  broker?: Partial<BrokerOptions>;
  /** The dashboard feed's batch and stats intervals (default 500 ms and 1 s), for tests. */
  feed?: HttpApiOptions['feed'];
  /**
   * TLS: the embedded broker adds an mqtts listener on `tls.port` (default
   * 8883; 0 = any free port) and the HTTP API is served over HTTPS on
   * `httpPort`. A `ca` turns on mutual TLS for both.
   */
  tls?: BrokerTlsOptions;
  /** false = no plain MQTT listener, only mqtts (needs `tls`). */
  plain?: boolean;
  /**
   * JWT authentication (`--auth jwt`): every MQTT client presents a JWT as its
   * password and the broker enforces each role's topics; every HTTP request but
   * GET /health needs a bearer token. The signing key lives in `dataDir`.
   */
  auth?: JwtAuthOptions;
}

export interface Federation {
  readonly broker: EdgefedBroker | undefined;
  /**
   * The hub. With a PostgreSQL store the hub is the active one of an HA
   * group (`ha`): reading this on a standby throws EDGEFED_ERR_STANDBY; use
   * `hubApi`, which is always what the HTTP API serves.
   */
  readonly hub: Hub;
  /** What the HTTP API serves: the hub, or on an HA standby its view of the store. */
  readonly hubApi: HubApi;
  /** HA (a postgres:// store): the lease, this hub's role, who is active. */
  readonly ha: HubSupervisor | undefined;
  readonly api: HttpApi;
  /** `mqtt://...` that devices connect to. */
  readonly mqttUrl: string | undefined;
  /** `mqtts://...` of the embedded broker's TLS listener, with `tls`. */
  readonly mqttsUrl: string | undefined;
  /** With `auth`: what the embedded broker refused, by reason. */
  readonly authStats: AuthHooks['stats'] | undefined;
  stop(): Promise<void>;
}

export async function startFederation(o: FederationOptions): Promise<Federation> {
  const log = o.logger ?? jsonLogger('info');
  const bind = o.bind ?? '127.0.0.1';
  const topicRoot = o.topicRoot ?? DEFAULT_TOPIC_ROOT;
  const maxPayloadBytes = o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  // The HTTP API answers on `bind` too, with or without the embedded broker.
  const auth = o.auth ? await prepareJwtAuth(o.dataDir, o.auth, log) : undefined;
  assertBindAllowed({ host: bind, insecure: o.insecure ?? false, authConfigured: o.broker?.authenticate !== undefined || auth !== undefined });
  // Before anything listens, and also with an external broker (then only the API uses TLS).
  if (o.tls) serverTlsOptions(o.tls);
  const hooks = auth && !o.brokerUrl ? authHooks(o, auth.verifier, topicRoot, maxPayloadBytes, log) : undefined;
  const broker = o.brokerUrl ? undefined : await startEmbeddedBroker(o, bind, topicRoot, maxPayloadBytes, log, hooks).catch((err: NodeJS.ErrnoException) => {
    // The mqtts listener names its own port (EDGEFED_ERR_MQTTS_LISTEN).
    if (err.code !== 'EADDRINUSE') throw err;
    throw new EdgefedError('EDGEFED_ERR_MQTT_LISTEN', `${bind}:${o.mqttPort ?? 1883} is already in use (another edgefed start, or a mosquitto?). Stop it, choose another --mqtt-port, or use it with --broker-url.`);
  });
  let hub: Hub | undefined;
  let ha: HubSupervisor | undefined;
  try {
    if (typeof o.store === 'string' && isPostgresUrl(o.store)) {
      ha = haSupervisor(o, o.store, () => hubOptions(o, broker, topicRoot, maxPayloadBytes, log, auth), log);
      await ha.start();
    } else {
      hub = createHub(hubOptions(o, broker, topicRoot, maxPayloadBytes, log, auth));
      await hub.start();
    }
  } catch (err) {
    await broker?.close();
    throw err;
  }
  const hubApi: HubApi = ha ? ha.api : hub!;
  let api: HttpApi;
  try {
    api = await startHttpApi(hubApi, {
      ...(ha ? { ha: () => ha.status() } : {}),
      ...(broker ? { broker: { stats: broker.stats, auth: hooks?.stats } } : {}),
      host: bind, port: o.httpPort ?? 8080, bodyLimit: maxPayloadBytes, ...(o.tls ? { tls: o.tls } : {}), ...(auth ? { verifier: auth.verifier } : {}),
      ...(o.feed ? { feed: o.feed } : {}),
    });
  } catch (err) {
    await (ha ?? hub!).stop();
    await broker?.close();
    throw new EdgefedError('EDGEFED_ERR_HTTP_LISTEN', `cannot listen on ${bind}:${o.httpPort ?? 8080} (${(err as Error).message}); choose another --http-port`);
  }
  ha?.setApiUrl(api.url);
  return {
    broker,
    get hub(): Hub {
      if (hub) return hub;
      const active = ha!.activeHub;
      if (!active) throw new EdgefedError('EDGEFED_ERR_STANDBY', 'this hub is a standby (fed.ha.role); fed.hubApi serves its view of the store');
      return active;
    },
    hubApi,
    ha,
    api,
    mqttUrl: broker ? broker.url : o.brokerUrl,
    mqttsUrl: broker?.tlsUrl,
    authStats: hooks?.stats,
    async stop() {
      await api.close();
      await (ha ?? hub!).stop();
      await broker?.close();
      hooks?.close();
      await auth?.close();
    },
  };
}

/** The HA supervisor of a postgres:// store: each hub it makes acts under the lease (fenced store, gated publishes). */
function haSupervisor(o: FederationOptions, url: string, base: () => HubOptions, log: Logger): HubSupervisor {
  return new HubSupervisor({
    url,
    hubId: o.ha?.hubId ?? defaultHubId(o.dataDir),
    ...(o.ha?.ttlMs !== undefined ? { ttlMs: o.ha.ttlMs } : {}),
    ...(o.ha?.renewMs !== undefined ? { renewMs: o.ha.renewMs } : {}),
    log: log.child({ component: 'ha' }),
    createHub: ({ store, mayAct, events, lease }) => createHub({ ...base(), store, mayAct, events, lease }),
  });
}

function hubOptions(o: FederationOptions, broker: EdgefedBroker | undefined, topicRoot: string, maxPayloadBytes: number, log: Logger, auth: JwtAuth | undefined): HubOptions {
  return {
    ...o.hub,
    // The hub's session is the `hub` role: the only one that may publish triggers, commands and hub status.
    ...(auth ? { username: 'hub', password: auth.hubToken } : {}),
    ...brokerSession(o, broker, auth),
    ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
    ...(o.adapter !== undefined ? { adapter: o.adapter } : {}),
    ...(o.store !== undefined ? { store: typeof o.store === 'string' ? openStore(o.store, log) : o.store } : {}),
    topicRoot,
    logger: log,
    maxPayloadBytes,
    // An external broker keeps whatever it was sent: the hub repairs refused retained messages.
    repairRetained: o.hub?.repairRetained ?? broker === undefined,
    // An external broker outlives the hub: a persistent session keeps what nodes publish meanwhile.
    persistentSession: o.hub?.persistentSession ?? broker === undefined,
  };
}

/**
 * The embedded broker is read in-process, without MQTT packets; with JWT auth
 * the hub keeps an in-memory MQTT session, so that its own token and role go
 * through the broker's authentication and ACL like every client's.
 */
function brokerSession(o: FederationOptions, broker: EdgefedBroker | undefined, auth: JwtAuth | undefined): Pick<HubOptions, 'connect' | 'transport'> {
  if (!broker) return { connect: (opts) => connectExternal(o.brokerUrl!, opts) };
  if (auth) return { connect: (opts) => broker.connectInMemory(opts) };
  return { transport: inProcessTransport(broker) };
}

/** The retain gate (and a user's hook), behind the ACL when auth is on: only allowed publishes reach it. */
function afterAcl(o: FederationOptions, root: string, maxPayloadBytes: number): AuthorizePublishHook {
  const gate = makeRetainGate(topics(root), maxPayloadBytes);
  const userAuthorizePublish = o.broker?.authorizePublish;
  return (client, packet, done) => {
    gate(packet);
    if (userAuthorizePublish) userAuthorizePublish(client, packet, done);
    else done(null);
  };
}

function authHooks(o: FederationOptions, verifier: Verifier, root: string, maxPayloadBytes: number, log: Logger): AuthHooks {
  return createAuthHooks({ verifier, topicRoot: root, logger: log, next: afterAcl(o, root, maxPayloadBytes) });
}

function startEmbeddedBroker(o: FederationOptions, bind: string, root: string, maxPayloadBytes: number, log: Logger, hooks: AuthHooks | undefined): Promise<EdgefedBroker> {
  return createBroker({
    ...o.broker,
    host: bind,
    port: o.mqttPort ?? 1883,
    listen: o.mqttListen ?? true,
    ...(o.tls ? { tls: o.tls } : {}),
    ...(o.plain !== undefined ? { plain: o.plain } : {}),
    insecure: o.insecure ?? false,
    maxPacketBytes: o.maxPacketBytes ?? MAX_PACKET_BYTES,
    logger: log,
    authorizePublish: hooks?.authorizePublish ?? afterAcl(o, root, maxPayloadBytes),
    ...(hooks ? { authenticate: hooks.authenticate, authorizeSubscribe: hooks.authorizeSubscribe } : {}),
  });
}

/**
 * `--broker-url` may list the nodes of a broker cluster, comma-separated:
 * mqtt.js's `servers` then moves the hub's session to the next node on each
 * reconnect (its persistent session lives in the cluster, not in one node).
 */
function connectExternal(brokerUrl: string, opts: IClientOptions): MqttClient {
  const urls = brokerUrl.split(',').map((u) => u.trim()).filter(Boolean);
  if (urls.length === 1) return mqtt.connect(urls[0]!, opts);
  const servers = urls.map((u) => {
    const url = new URL(u);
    return { host: url.hostname, port: Number(url.port || (url.protocol === 'mqtts:' ? 8883 : 1883)), protocol: url.protocol.replace(':', '') as 'mqtt' | 'mqtts' };
  });
  return mqtt.connect(urls[0]!, { ...opts, servers });
}
