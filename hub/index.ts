/**
 * The hub: keeps the node registry from what nodes publish, persists it, and
 * tracks liveness. `createHub()` does no work; `start()` locks the data dir,
 * loads the registry, connects, and resynchronises the broker.
 */
import type { Adapter } from 'lowdb';
import type { IClientOptions, MqttClient } from 'mqtt';
import { nanoid } from 'nanoid';
import { jsonLogger, type Logger } from '../lib/log.js';
import { topics as makeTopics, DEFAULT_TOPIC_ROOT, type Topics } from '../lib/topics.js';
import type { HttpHeartbeat, HttpRegistration, Registration } from '../lib/wire.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from './admission.js';
import type { HubContext } from './context.js';
import type { BrokerView } from './metrics/broker.js';
import { newCounters, type HubCounters } from './counters.js';
import { defaultFlusherOptions, Flusher, type FlusherOptions } from './flusher.js';
import { checkClientId, hubClientId, mqttTransport } from './link.js';
import type { HubTransport, OpenHubTransport } from './transport.js';
import { lockDataDir, type DataDirLock } from './lock.js';
import { ActivitySeries } from './activity.js';
import { HubObservers } from './observe.js';
import { Refusals, type RefusalReport } from './refusals.js';
import { Registry, registrationOf, type NodeRecord } from './registry.js';
import { deregisterMissing, expectEcho, republishMissing, requestRebirthAll, waitForReplay } from './republish.js';
import { createRouter } from './router.js';
import { fileAdapter, registryPath, RegistryStore, type RegistryFile } from './store.js';
import { VERSION } from '../lib/version.js';
import { WpkService, type WpkOptions } from './wpk/service.js';
import { wpkFileAdapter, wpkMemoryAdapter, wpkPath, type WpkFile } from './wpk/store.js';
import type { WorkPackages } from './wpk/types.js';

export type { NodeRecord, NodeState } from './registry.js';
export type { HubCounters } from './counters.js';
export type { BrokerView } from './metrics/broker.js';
export type { WorkPackages, WpkRecord, WpkState, ExecutionRecord, WpkListFilter } from './wpk/types.js';
export { WpkRequestError } from './wpk/types.js';
export type { WpkOptions } from './wpk/service.js';
export { startFederation, type Federation, type FederationOptions } from './federation.js';
export { hubClientId } from './link.js';
export { inProcessTransport } from './in-process-link.js';
export type { HubTransport, LinkSetup, OpenHubTransport } from './transport.js';

export interface HubOptions {
  /**
   * Opens the hub's MQTT client (`mqtt.connect(url, o)`, or
   * `broker.connectInMemory` for an embedded broker). Give this or `transport`.
   */
  connect?: (opts: IClientOptions) => MqttClient;
  /**
   * The hub's session with its broker, instead of `connect`: e.g.
   * `inProcessTransport(broker)` on an embedded broker (startFederation does).
   */
  transport?: OpenHubTransport;
  /** Directory of registry.json and the lock. Required unless `adapter` is given. */
  dataDir?: string;
  /** Storage of the registry; default JSONFile at `<dataDir>/registry.json`. Tests pass lowdb's Memory. */
  adapter?: Adapter<RegistryFile>;
  /** Storage of work packages; default `<dataDir>/wpks.json`, in memory when there is no dataDir. */
  wpkAdapter?: Adapter<WpkFile>;
  /** Work-package timers, limits and defaults. */
  wpk?: WpkOptions;
  /** Topic root, default `edgefed/v1`. */
  topicRoot?: string;
  logger?: Logger;
  /** Largest node payload accepted, in bytes (default 64 KiB). */
  maxPayloadBytes?: number;
  /** Heartbeat intervals a node may miss before it is stale (default 3). */
  missedBeats?: number;
  /** How often liveness is checked (default 1000 ms). */
  sweepIntervalMs?: number;
  /** After a refusal on a retained topic, restore the last valid retained message (external brokers keep what they got). */
  repairRetained?: boolean;
  /** How long a deregistered node's record is kept before it is forgotten (default 7 days). */
  deregisteredRetentionMs?: number;
  /** Minimum time between two rebirth requests to one node (default 30 s). */
  rebirthThrottleMs?: number;
  /** MQTT keepalive of the hub's own session, seconds (default 30). */
  keepaliveS?: number;
  /**
   * A persistent MQTT session (clean: false): the broker keeps the hub's
   * subscriptions and queues what nodes publish at QoS 1 (execution updates,
   * registrations, statuses) while the hub is away. startFederation turns it
   * on for an external broker. Default false: a clean session, as suits the
   * embedded broker, which goes away with the hub.
   */
  persistentSession?: boolean;
  /**
   * MQTT client id of the hub. Default: with a persistent session, a stable
   * one (`hubClientId(topicRoot)`: `edgefed-hub` for the default root, else
   * `edgefed-hub-` and 8 hex digits of the root's SHA-256); otherwise one per
   * boot. Two hubs with one client id on one broker take the session from
   * each other in a loop. 1 to 128 of letters, digits and `. _ : @ -`.
   */
  clientId?: string;
  /** Credentials of the hub's MQTT session (JWT auth). */
  username?: string;
  password?: string;
  flush?: Partial<Omit<FlusherOptions, 'onError'>>;
  resync?: { settleMs: number; maxWaitMs: number };
}

type HubDefaults = Required<Pick<HubOptions,
  'topicRoot' | 'maxPayloadBytes' | 'missedBeats' | 'sweepIntervalMs' | 'repairRetained' | 'rebirthThrottleMs' | 'keepaliveS' | 'resync'
  | 'deregisteredRetentionMs' | 'persistentSession'>>;

export const defaultHubOptions: HubDefaults = {
  topicRoot: DEFAULT_TOPIC_ROOT,
  maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
  missedBeats: 3,
  sweepIntervalMs: 1000,
  repairRetained: false,
  rebirthThrottleMs: 30_000,
  deregisteredRetentionMs: 7 * 24 * 3600 * 1000,
  keepaliveS: 30,
  persistentSession: false,
  resync: { settleMs: 300, maxWaitMs: 5000 },
};

export interface NodeFilter { capability?: string; status?: string; labels?: Record<string, string> }

export class Hub {
  readonly bootId = nanoid();
  readonly topics: Topics;
  readonly registry = new Registry();
  readonly counters: HubCounters = newCounters();
  /** Events for metrics and the dashboard (dispatch latency, finished WPKs, registry writes). */
  readonly observers = new HubObservers();
  /** Dispatches, finished WPKs and latency per second over the last five minutes (the dashboard's chart). */
  readonly activity = new ActivitySeries(this.observers);
  readonly log: Logger;
  readonly startedAt = Date.now();
  #o: HubOptions & HubDefaults;
  #store: RegistryStore;
  #flusher: Flusher;
  #link: HubTransport;
  #ctx: HubContext;
  #wpks: WpkService;
  #lock: DataDirLock | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #lastRebirth = new Map<string, number>();
  #stopped = false;
  #starting: Promise<void> | undefined;

  constructor(options: HubOptions) {
    this.#o = { ...defaultHubOptions, ...options };
    if (!this.#o.adapter && !this.#o.dataDir) throw new Error('EDGEFED_ERR_HUB_CONFIG: give the hub a dataDir (or a storage adapter)');
    this.topics = makeTopics(this.#o.topicRoot);
    const persistent = this.#o.persistentSession === true;
    const clientId = this.#o.clientId !== undefined ? checkClientId(this.#o.clientId)
      : persistent ? hubClientId(this.#o.topicRoot) : `edgefed-hub-${this.bootId.slice(0, 8)}`;
    this.log = (this.#o.logger ?? jsonLogger('info')).child({ component: 'hub' });
    const where = this.#o.dataDir ? registryPath(this.#o.dataDir) : 'registry';
    this.#store = new RegistryStore(this.#o.adapter ?? fileAdapter(this.#o.dataDir!), where);
    this.#flusher = new Flusher(() => this.#save(), {
      ...defaultFlusherOptions,
      ...this.#o.flush,
      onError: (err) => { this.counters.flush_errors += 1; this.log.error({ err: err.message }, 'registry flush failed; will retry'); },
      onFlushed: (ms) => { this.counters.flushes += 1; this.counters.last_flush_ms = ms; this.observers.registryFlushed.emit(ms); },
    });
    const openTransport = this.#o.transport ?? (this.#o.connect ? mqttTransport(this.#o.connect) : undefined);
    if (!openTransport) throw new Error('EDGEFED_ERR_HUB_CONFIG: give the hub a broker: `connect` (an MQTT client) or `transport`');
    this.#link = openTransport({
      topics: this.topics,
      bootId: this.bootId,
      clientId,
      persistent,
      keepaliveS: this.#o.keepaliveS,
      version: VERSION,
      log: this.log,
      ...(this.#o.username !== undefined ? { username: this.#o.username } : {}),
      ...(this.#o.password !== undefined ? { password: this.#o.password } : {}),
      onMessage: (topic, payload, retained) => {
        if (retained && topic === this.topics.hubStatus()) this.#ctx.resync.brokerKeptStore = true;
        route(topic, payload, retained);
      },
      onConnecting: () => {
        const r = this.#ctx.resync;
        r.seen.clear();
        r.brokerKeptStore = false;
        r.generation += 1;
      },
      onSubscribed: (first) => void this.#resync(first),
    });
    this.#ctx = {
      topics: this.topics,
      registry: this.registry,
      flusher: this.#flusher,
      counters: this.counters,
      refusals: new Refusals(this.topics, this.counters, this.log, (t, p, o) => this.#link.publish(t, p, o)),
      log: this.log,
      out: this.#link,
      resync: { seen: new Set(), brokerKeptStore: false, generation: 0 },
      expectedEchoes: new Map(),
      requestRebirth: (id) => this.#requestRebirth(id),
      nodeChanged: (id) => this.#wpks.nodeChanged(id),
      now: () => Date.now(),
    };
    const dataDir = this.#o.dataDir;
    this.#wpks = new WpkService({
      topics: this.topics,
      registry: this.registry,
      out: this.#link,
      counters: this.counters,
      refusals: this.#ctx.refusals,
      log: this.log,
      adapter: this.#o.wpkAdapter ?? (dataDir ? wpkFileAdapter(dataDir) : wpkMemoryAdapter()),
      where: dataDir ? wpkPath(dataDir) : 'wpks',
      startedAt: this.startedAt,
      observe: this.observers,
    }, this.#o.wpk);
    const route = createRouter(this.#ctx, {
      maxPayloadBytes: this.#o.maxPayloadBytes,
      onExecution: (_ctx, nodeId, update) => this.#wpks.onExecution(nodeId, update),
      onTrigger: (topic) => this.#wpks.onTriggerSeen(topic),
      ...(this.#o.repairRetained ? { onRefusedRetained: (id: string, fam: 'registration' | 'status') => this.#repairRetained(id, fam) } : {}),
    });
  }

  get connected(): boolean { return this.#link.connected; }
  /** What the embedded broker counts (connections, traffic, refusals), for /health and /metrics; set by startFederation. */
  broker: BrokerView | undefined;
  /** Where the registry is written, or undefined with a storage adapter of the embedder's. */
  get registryFile(): string | undefined { return this.#o.adapter || !this.#o.dataDir ? undefined : registryPath(this.#o.dataDir); }
  /** Work packages: create, list, cancel (the HTTP API and the CLI use this). */
  get wpks(): WorkPackages { return this.#wpks; }
  get context(): HubContext { return this.#ctx; }

  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    if (this.#o.dataDir) this.#lock = await lockDataDir(this.#o.dataDir);
    try {
      this.registry.restore(await this.#store.load());
      this.log.info({ nodes: this.registry.size, data: this.#o.dataDir }, 'registry loaded');
      await this.#wpks.load();
      if (this.#stopped) throw new Error('EDGEFED_ERR_HUB_STOPPED: the hub was stopped while starting');
      await this.#link.start();
    } catch (err) {
      await this.#lock?.release();
      throw err;
    }
    if (this.#stopped) return;
    this.#sweep = setInterval(() => this.#sweepLiveness(), this.#o.sweepIntervalMs);
    this.#wpks.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#link.stop(); // also aborts a connect in progress
    await this.#starting?.catch(() => undefined); // let a start in progress settle first
    clearInterval(this.#sweep);
    await this.#wpks.stop();
    await this.#flusher.stop();
    await this.#lock?.release();
    this.log.info('hub stopped');
  }

  /** Writes pending registry changes now (tests, shutdown, backups). */
  async flush(): Promise<void> {
    await Promise.all([this.#flusher.flushNow(), this.#wpks.flush()]);
  }

  nodes(filter: NodeFilter = {}): NodeRecord[] {
    const out: NodeRecord[] = [];
    for (const r of this.registry.all()) {
      if (filter.capability && !r.capabilities.includes(filter.capability)) continue;
      if (filter.status && r.status !== filter.status) continue;
      if (filter.labels && Object.entries(filter.labels).some(([k, v]) => r.labels[k] !== v)) continue;
      out.push(r);
    }
    return out.sort((a, b) => a.node_id.localeCompare(b.node_id, 'en', { numeric: true }));
  }

  /** `POST /federation/register`: an HTTP-only device joins; bridged to its retained MQTT registration. */
  registerOverHttp(body: HttpRegistration): { record: NodeRecord; created: boolean } {
    const reg: Registration = { ...body, boot_id: body.boot_id ?? nanoid(), ts: Date.now() };
    const { outcome, record } = this.registry.applyRegistration(reg, { now: Date.now(), live: true });
    this.counters.registrations += 1;
    this.#flusher.markDirty('durable');
    expectEcho(this.#ctx, reg.node_id);
    this.#link.publish(this.topics.registration(reg.node_id), JSON.stringify(reg), { qos: 1, retain: true });
    this.log.info({ node_id: reg.node_id, outcome, via: 'http' }, 'node registered');
    this.#wpks.nodeChanged(reg.node_id);
    return { record, created: outcome === 'created' };
  }

  /** Records a refusal (HTTP bodies too): logged once, counted with the MQTT ones. */
  refuse(report: RefusalReport): void {
    this.#ctx.refusals.record(report);
  }

  /** `POST /federation/nodes/:id/heartbeat`: liveness for HTTP-only devices. */
  heartbeatOverHttp(nodeId: string, body: HttpHeartbeat): NodeRecord | undefined {
    const change = this.registry.applyHeartbeat(nodeId, body, Date.now());
    if (change === 'unknown_node') return undefined;
    this.counters.messages.heartbeat += 1;
    if (change !== 'none') this.#flusher.markDirty(change);
    if (change === 'durable') this.#wpks.nodeChanged(nodeId);
    return this.registry.get(nodeId);
  }

  async #save(): Promise<void> {
    await this.#store.save(this.registry.all(), Date.now());
  }

  #sweepLiveness(): void {
    const pruned = this.registry.pruneDeregistered(Date.now(), this.#o.deregisteredRetentionMs);
    if (pruned.length > 0) {
      this.log.info({ nodes: pruned.length }, 'forgot nodes deregistered long ago');
      this.#flusher.markDirty('durable');
    }
    const changed = this.registry.sweep(Date.now(), this.#o.missedBeats);
    if (changed.length === 0) return;
    this.counters.stale_transitions += changed.length;
    for (const r of changed) {
      this.log.info({ node_id: r.node_id, last_seen: r.last_seen }, 'node stale (missed heartbeats)');
      this.#wpks.nodeChanged(r.node_id);
    }
    this.#flusher.markDirty('durable');
  }

  #requestRebirth(nodeId: string): void {
    const now = Date.now();
    const last = this.#lastRebirth.get(nodeId);
    if (last !== undefined && now - last < this.#o.rebirthThrottleMs) return;
    if (this.#lastRebirth.size > 100_000) this.#pruneRebirths(now);
    this.#lastRebirth.set(nodeId, now);
    this.counters.rebirths_requested += 1;
    this.#link.publish(this.topics.commands(nodeId), JSON.stringify({ command: 'rebirth', ts: now }), { qos: 1, retain: false });
  }

  /** Forgets throttle entries that have expired, so the map stays bounded without resetting live ones. */
  #pruneRebirths(now: number): void {
    for (const [id, at] of this.#lastRebirth) if (now - at >= this.#o.rebirthThrottleMs) this.#lastRebirth.delete(id);
  }

  async #resync(first: boolean): Promise<void> {
    if (!(await waitForReplay(this.#ctx, this.#o.resync, () => this.#stopped))) return;
    const { seen, brokerKeptStore } = this.#ctx.resync;
    const republished = brokerKeptStore ? 0 : republishMissing(this.#ctx);
    const deregistered = brokerKeptStore ? deregisterMissing(this.#ctx) : [];
    for (const id of deregistered) this.log.info({ node_id: id }, 'node deregistered while the hub was away');
    const rebirths = first ? requestRebirthAll(this.#ctx) : 0;
    this.log.info({ replayed: seen.size, broker_kept_store: brokerKeptStore, republished, deregistered: deregistered.length, rebirths }, 'broker resynchronised with the registry');
  }

  /** An external broker kept a refused retained message: put back the last valid one, or clear it. */
  #repairRetained(nodeId: string, family: 'registration' | 'status'): void {
    const record = this.registry.get(nodeId);
    const topic = family === 'registration' ? this.topics.registration(nodeId) : this.topics.status(nodeId);
    const good = family === 'registration' && record && record.status !== 'deregistered' ? JSON.stringify(registrationOf(record)) : '';
    // '' clears the topic; for a registration it reads as a deregistration, a no-op for a node not active here.
    if (good !== '') expectEcho(this.#ctx, nodeId);
    this.#link.publish(topic, good, { qos: 1, retain: true });
  }
}

export function createHub(options: HubOptions): Hub {
  return new Hub(options);
}
