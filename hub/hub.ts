/**
 * The hub: keeps the node registry from what nodes publish, persists it, and
 * tracks liveness. `createHub()` does no work; `start()` locks the data dir,
 * loads the registry, connects, and resynchronises the broker.
 */
import { nanoid } from 'nanoid';
import { errorFields, jsonLogger, type Logger } from '../lib/log.js';
import { topics as makeTopics, type Topics } from '../lib/topics.js';
import { VERSION } from '../lib/version.js';
import type { HttpHeartbeat, HttpRegistration, Registration } from '../lib/wire.js';
import type { CountersSnapshot, HubApi, NodeFilter } from './api.js';
import { createChangeSink } from './changes.js';
import { filterNodes } from './node-filter.js';
import { NodeIndex, type NodePage, type PageRequest } from './node-index.js';
import type { HubContext } from './context.js';
import { newCounters, type HubCounters } from './counters.js';
import { defaultFlusherOptions, Flusher } from './flusher.js';
import { handleHeartbeat } from './handlers/heartbeat.js';
import { handleRegistration } from './handlers/registration.js';
import { NodeJournal } from './journal.js';
import { checkClientId, hubClientId, mqttTransport } from './link.js';
import { gated, type HubTransport } from './transport.js';
import { RebirthThrottle, WillGrace } from './node-timers.js';
import { lockDataDir, type DataDirLock } from './lock.js';
import { HubObservers } from './observe.js';
import { defaultHubOptions, type HubDefaults, type HubOptions } from './options.js';
import { Refusals, type RefusalReport } from './refusals.js';
import { Registry, registrationOf, type NodeRecord, type NodeState } from './registry.js';
import { deregisterMissing, expectEcho, republishMissing, requestRebirthAll, waitForReplay } from './republish.js';
import { createRouter } from './router.js';
import { LowdbStore } from './store/lowdb.js';
import { registryPath } from './store/registry-file.js';
import { StoreHealth, type StoreStatus } from './store/health.js';
import type { Store } from './store/types.js';
import { WpkService } from './wpk/service.js';
import { StateService, type NodeStateView } from './state/service.js';
import type { StateObject } from '../lib/desired-state.js';
import type { WorkPackages } from './wpk/types.js';
import { EdgefedError } from '../lib/errors.js';


export { defaultHubOptions, type HubOptions } from './options.js';

export class Hub implements HubApi {
  readonly bootId = nanoid();
  readonly topics: Topics;
  /** Events for metrics and the dashboard (dispatch latency, finished WPKs, registry writes). */
  readonly events: HubObservers;
  readonly #counters: HubCounters = newCounters();
  readonly #registry: Registry;
  readonly #journal: NodeJournal;
  readonly #index: NodeIndex;
  readonly log: Logger;
  readonly startedAt = Date.now();
  #o: HubOptions & HubDefaults;
  #store: Store;
  readonly #storeHealth: StoreHealth;
  #storeCheck: { at: number; running: boolean } = { at: 0, running: false };
  #flusher: Flusher;
  #link: HubTransport;
  #ctx: HubContext;
  #wpks: WpkService;
  #state: StateService;
  #lock: DataDirLock | undefined;
  #sweep: NodeJS.Timeout | undefined;
  readonly #rebirths: RebirthThrottle;
  readonly #wills: WillGrace;
  #stopped = false;
  #starting: Promise<void> | undefined;

  constructor(options: HubOptions) {
    this.#o = { ...defaultHubOptions, ...options };
    this.events = this.#o.events ?? new HubObservers();
    if (!this.#o.store && !this.#o.adapter && !this.#o.dataDir) throw new EdgefedError('EDGEFED_ERR_HUB_CONFIG', 'give the hub a dataDir (or a store)');
    this.topics = makeTopics(this.#o.topicRoot);
    const persistent = this.#o.persistentSession === true;
    const clientId = this.#o.clientId !== undefined ? checkClientId(this.#o.clientId)
      : persistent ? hubClientId(this.#o.topicRoot) : `edgefed-hub-${this.bootId.slice(0, 8)}`;
    this.log = (this.#o.logger ?? jsonLogger('info')).child({ component: 'hub' });
    this.#store = this.#o.store ?? new LowdbStore({
      ...(this.#o.dataDir !== undefined ? { dataDir: this.#o.dataDir } : {}),
      ...(this.#o.adapter ? { registry: this.#o.adapter } : {}),
      ...(this.#o.wpkAdapter ? { wpks: this.#o.wpkAdapter } : {}),
    });
    this.#storeHealth = new StoreHealth(this.#store.describe ?? { kind: 'custom', location: 'embedder' }, this.log);
    this.#flusher = new Flusher(() => this.#writeNodes(), {
      ...defaultFlusherOptions,
      ...this.#o.flush,
      onError: (err) => { this.#counters.flush_errors += 1; this.#storeHealth.failed(err, 'node changes'); },
      onFlushed: (ms) => {
        this.#counters.flushes += 1;
        this.#counters.last_flush_ms = ms;
        this.#storeHealth.succeeded('node changes');
        this.events.registryFlushed.emit(ms);
      },
    });
    const openTransport = this.#o.transport ?? (this.#o.connect ? mqttTransport(this.#o.connect) : undefined);
    if (!openTransport) throw new EdgefedError('EDGEFED_ERR_HUB_CONFIG', 'give the hub a broker: `connect` (an MQTT client) or `transport`');
    this.#link = gated(openTransport({
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
        if (topic === this.topics.hubStatus()) {
          if (retained) this.#ctx.resync.brokerKeptStore = true;
          else this.#onHubStatus(payload);
        }
        route(topic, payload, retained);
      },
      onConnecting: () => {
        const r = this.#ctx.resync;
        r.seen.clear();
        r.brokerKeptStore = false;
        r.generation += 1;
        this.#state.onConnecting();
      },
      onSubscribed: (first) => void this.#resync(first),
      ...(this.#o.mayAct ? { mayAct: this.#o.mayAct } : {}),
      ...(this.#o.lease ? { lease: this.#o.lease } : {}),
    }), this.#o.mayAct);
    this.#wills = new WillGrace(this.#o.willGraceMs);
    this.#rebirths = new RebirthThrottle({ topics: this.topics, out: this.#link, counters: this.#counters, throttleMs: this.#o.rebirthThrottleMs });
    this.#journal = new NodeJournal((urgency) => this.#flusher.markDirty(urgency));
    this.#registry = new Registry(createChangeSink({
      journal: this.#journal, counters: this.#counters, log: this.log, events: this.events,
      nodeChanged: (id) => this.#wpks.nodeChanged(id),
      forgotten: (id) => this.#state.forget(id),
    }));
    this.#index = new NodeIndex(this.#registry);
    this.#ctx = {
      topics: this.topics,
      registry: this.#registry,
      counters: this.#counters,
      refusals: new Refusals(this.topics, this.#counters, this.log, (t, p, o) => this.#link.publish(t, p, o)),
      log: this.log,
      out: this.#link,
      resync: { seen: new Set(), brokerKeptStore: false, generation: 0 },
      expectedEchoes: new Map(),
      requestRebirth: (id) => this.#rebirths.request(id),
      now: () => Date.now(),
      willGraceMs: this.#o.willGraceMs,
      deferWill: (id, apply) => this.#wills.defer(id, apply),
    };
    this.#wpks = new WpkService({
      topics: this.topics,
      registry: this.#registry,
      out: this.#link,
      counters: this.#counters,
      refusals: this.#ctx.refusals,
      log: this.log,
      store: this.#store,
      storeHealth: this.#storeHealth,
      startedAt: this.startedAt,
      observe: this.events,
    }, { triggerAfterWrite: this.#store.describe?.kind === 'postgres', ...this.#o.wpk });
    this.#state = new StateService({
      topics: this.topics, registry: this.#registry, out: this.#link, counters: this.#counters, log: this.log, now: () => Date.now(),
    });
    const route = createRouter(this.#ctx, {
      onReported: (nodeId, report) => this.#state.onReported(nodeId, report),
      onDesired: (nodeId, payload, retained) => this.#state.onDesiredSeen(nodeId, payload, retained),
      maxPayloadBytes: this.#o.maxPayloadBytes,
      onExecution: (_ctx, nodeId, update) => this.#wpks.onExecution(nodeId, update),
      onTrigger: (topic) => this.#wpks.onTriggerSeen(topic),
      ...(this.#o.repairRetained ? { onRefusedRetained: (id: string, fam: 'registration' | 'status') => this.#repairRetained(id, fam) } : {}),
    });
  }

  get connected(): boolean { return this.#link.connected; }
  /** Where the registry is written, or undefined with a storage adapter of the embedder's. */
  get registryFile(): string | undefined { return this.#o.store || this.#o.adapter || !this.#o.dataDir ? undefined : registryPath(this.#o.dataDir); }
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
      const stored = await this.#store.load();
      for (const id of this.#registry.restore(stored.nodes)) this.#journal.upserted(id);
      this.log.info({ nodes: this.#registry.size, data: this.#o.dataDir, store: this.#store.describe?.location }, 'registry loaded');
      this.#wpks.restore(stored.wpks);
      if (this.#stopped) throw new EdgefedError('EDGEFED_ERR_HUB_STOPPED', 'the hub was stopped while starting');
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
    this.#wills.stop();
    await this.#wpks.stop();
    await this.#flusher.stop();
    await this.#store.close();
    await this.#lock?.release();
    this.log.info('hub stopped');
  }

  /**
   * Stops at once, writing and publishing nothing more (an HA hub that lost
   * its lease): the session is cut without a goodbye, pending changes are
   * dropped (the successor has the store), timers end. The data dir lock is
   * released.
   */
  async abandon(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#link.abandon();
    await this.#starting?.catch(() => undefined);
    clearInterval(this.#sweep);
    this.#wills.stop();
    this.#wpks.abandon();
    this.#flusher.abandon();
    await this.#store.close().catch(() => undefined);
    await this.#lock?.release();
    this.log.warn('hub abandoned its session and store: another hub is active');
  }

  /** Writes pending registry changes now (tests, shutdown, backups). */
  async flush(): Promise<void> {
    await Promise.all([this.#flusher.flushNow(), this.#wpks.flush()]);
  }

  eachNode(): Iterable<NodeRecord> { return this.#registry.all(); }
  node(nodeId: string): NodeRecord | undefined { return this.#registry.get(nodeId); }
  countNodesByStatus(): Record<NodeState, number> { return this.#registry.countByStatus(); }
  counters(): CountersSnapshot { return structuredClone(this.#counters); }

  nodePage(filter: NodeFilter, page: PageRequest): NodePage {
    return this.#index.page(filter, page);
  }

  nodes(filter: NodeFilter = {}): NodeRecord[] {
    return filterNodes(this.#registry.all(), filter);
  }

  /**
   * `POST /federation/register`: an HTTP-only device joins. The same door as
   * a retained registration over MQTT (handlers/registration.ts), then
   * bridged to the broker so MQTT subscribers see the node too; the echo of
   * that publication is expected and proves nothing.
   */
  register(body: HttpRegistration): { record: NodeRecord; created: boolean } {
    const reg: Registration = { ...body, boot_id: body.boot_id ?? nanoid(), ts: Date.now() };
    const existed = this.#registry.get(reg.node_id)?.status;
    handleRegistration(this.#ctx, reg.node_id, reg, true);
    expectEcho(this.#ctx, reg.node_id);
    this.#link.publish(this.topics.registration(reg.node_id), JSON.stringify(reg), { qos: 1, retain: true });
    return { record: this.#registry.get(reg.node_id)!, created: existed === undefined };
  }

  /** `GET /federation/nodes/:id/state`; undefined for an unknown node. */
  nodeState(nodeId: string): NodeStateView | undefined { return this.#state.view(nodeId); }

  /** `PATCH /federation/nodes/:id/desired`: a merge patch, conditional on `ifVersion`; throws StateRequestError (404, 412, 413). */
  patchDesired(nodeId: string, patch: StateObject, ifVersion?: number): NodeStateView { return this.#state.patch(nodeId, patch, ifVersion); }

  /** Nodes whose reported state lags their desired state (metrics, dashboard). */
  countOutOfSync(): number { return this.#state.countOutOfSync(); }

  /**
   * `DELETE /federation/nodes/:id`: the record goes (through the registry's
   * one door: stored, counted, its work given up as if the node were lost),
   * and so do its retained registration and status on the broker, so that
   * neither a subscriber nor the next hub start brings it back. False for an
   * unknown node.
   */
  removeNode(nodeId: string): boolean {
    if (!this.#registry.remove(nodeId)) return false;
    for (const topic of [this.topics.registration(nodeId), this.topics.status(nodeId)]) {
      this.#link.publish(topic, '', { qos: 1, retain: true });
    }
    return true;
  }

  /** Records a refusal (HTTP bodies too): logged once, counted with the MQTT ones. */
  refuse(report: RefusalReport): void {
    this.#ctx.refusals.record(report);
  }

  /** `POST /federation/nodes/:id/heartbeat`: the same door as an MQTT heartbeat; undefined for an unknown node. */
  heartbeat(nodeId: string, body: HttpHeartbeat): NodeRecord | undefined {
    if (!handleHeartbeat(this.#ctx, nodeId, body, 'http')) return undefined;
    this.#counters.messages.heartbeat += 1;
    return this.#registry.get(nodeId);
  }

  /** One batch of node changes for the store; a failed write puts them back for the retry. */
  async #writeNodes(): Promise<void> {
    const changes = this.#journal.take((id) => this.#registry.get(id));
    try {
      await this.#store.writeNodes(changes);
    } catch (err) {
      this.#journal.putBack(changes);
      throw err;
    }
  }

  /** Forgets long-deregistered nodes and marks silent ones stale; the registry reports each change. */
  #sweepLiveness(): void {
    const now = Date.now();
    this.#registry.pruneDeregistered(now, this.#o.deregisteredRetentionMs, this.#o.offlineRetentionMs);
    this.#registry.sweep(now, this.#o.missedBeats);
    this.#checkStore(now);
  }

  /**
   * Asks the store whether it answers, every storeCheckMs: an outage shows
   * in /health even when nothing is being written, and its end starts the
   * catch-up at once instead of at the next backed-off retry.
   */
  #checkStore(now: number): void {
    const check = this.#store.check;
    if (!check || this.#storeCheck.running || now - this.#storeCheck.at < this.#o.storeCheckMs) return;
    this.#storeCheck = { at: now, running: true };
    check.call(this.#store).then(
      () => {
        if (this.#storeHealth.down) { void this.#flusher.flushNow().catch(() => undefined); void this.#wpks.flush().catch(() => undefined); }
        this.#storeHealth.succeeded('check');
      },
      (err: Error) => this.#storeHealth.failed(err, 'check'),
    ).finally(() => { this.#storeCheck.running = false; });
  }

  /**
   * Another hub process's `offline` on hub/status (a will the broker sent
   * late: an HA predecessor killed with -9 is declared lost only after its
   * keepalive, long after this hub took over) would stand as the retained
   * status of the federation: this hub announces itself again.
   */
  #onHubStatus(payload: Buffer): void {
    let s: { state?: unknown; boot_id?: unknown };
    try { s = JSON.parse(payload.toString()) as typeof s; } catch { return; }
    if (s.state !== 'offline' || s.boot_id === this.bootId || !this.#link.connected) return;
    this.log.info({ other_boot_id: s.boot_id }, 'another hub\'s offline status replaced: this hub is online');
    this.#link.reannounce();
  }

  /** Whether the store takes writes now (GET /health, /metrics). */
  storeStatus(): StoreStatus { return this.#storeHealth.status(); }

  async #resync(first: boolean): Promise<void> {
    if (!(await waitForReplay(this.#ctx, this.#o.resync, () => this.#stopped))) return;
    const { seen, brokerKeptStore } = this.#ctx.resync;
    const republished = brokerKeptStore ? 0 : republishMissing(this.#ctx);
    const deregistered = brokerKeptStore ? deregisterMissing(this.#ctx) : [];
    for (const id of deregistered) this.log.info({ node_id: id }, 'node deregistered while the hub was away');
    const rebirths = first ? requestRebirthAll(this.#ctx) : 0;
    // Whatever the broker says about its store, a desired state it did not replay is published again: nodes wait on it.
    const desired = this.#state.republishMissing();
    this.log.info({ replayed: seen.size, broker_kept_store: brokerKeptStore, republished, deregistered: deregistered.length, rebirths, desired_republished: desired }, 'broker resynchronised with the registry');
  }

  /** An external broker kept a refused retained message: put back the last valid one, or clear it. */
  #repairRetained(nodeId: string, family: 'registration' | 'status'): void {
    const record = this.#registry.get(nodeId);
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
