/**
 * The work-package service with nothing live around it: an in-memory
 * registry, a publisher that records what the hub would send, an in-memory
 * store and a FakeClock. Nodes are registry entries changed the way the hub's
 * handlers change them (then `nodeChanged`, as the handlers call it), and
 * execution updates go to `onExecution` as the router hands them over. No
 * broker, no socket, no sleep: time moves with `rig.advance(ms)`.
 */
import { newCounters, type HubCounters } from '../../hub/counters.js';
import { HubObservers } from '../../hub/observe.js';
import { Refusals } from '../../hub/refusals.js';
import { Registry, type NodeRecord } from '../../hub/registry.js';
import { defaultWpkOptions, WpkService, type WpkOptions } from '../../hub/wpk/service.js';
import { wpkMemoryAdapter, type WpkFile } from '../../hub/wpk/store.js';
import { LowdbStore } from '../../hub/store/lowdb.js';
import type { WpkRecord } from '../../hub/wpk/types.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { topics } from '../../lib/topics.js';
import type { CancelCommand, ExecutionState, ExecutionUpdate, HttpWpkRequest, Registration, WpkTrigger } from '../../lib/wire.js';
import type { Adapter } from 'lowdb';
import { suite } from 'uvu';
import { FakeClock } from './clock.js';
import { withTimeout } from './time.js';

const t = topics();

export interface NodeOptions {
  capabilities?: string[];
  maxConcurrency?: number;
  labels?: Record<string, string>;
  heartbeatIntervalMs?: number;
  bootId?: string;
}

export interface Sent { topic: string; trigger?: WpkTrigger; cancel?: CancelCommand & { node_id: string } }

export interface RigOptions {
  wpk?: WpkOptions;
  /** Defaults to a fresh FakeClock. */
  clock?: FakeClock;
  /** When the hub started (default: the clock's now). */
  startedAt?: number;
  log?: Logger;
  /** The WPK document the rig's store writes (share one between two rigs to restart a hub). */
  adapter?: Adapter<WpkFile>;
  /** Calls service.start() (the sweep timer); default true. */
  start?: boolean;
}

export interface Rig {
  clock: FakeClock;
  registry: Registry;
  counters: HubCounters;
  observers: HubObservers;
  service: WpkService;
  /** Takes the WPKs the store holds, as a starting hub does (`start: false` rigs). */
  load(): Promise<void>;
  sent: Sent[];
  /** The ids of the WPKs in each batch written to the store, oldest first. */
  batches: string[][];
  /** Triggers published so far, oldest first. */
  triggers(wpkId?: string): WpkTrigger[];
  /** Cancel commands published so far, with the node each went to. */
  cancels(wpkId?: string): Array<CancelCommand & { node_id: string }>;
  /** Registers a node live (active) and tells the service, as the registration handler does. */
  node(id: string, opts?: NodeOptions): NodeRecord;
  /** The node's will or shutdown status: offline. */
  offline(id: string, reason?: 'lost' | 'shutdown'): void;
  /** The node's `online` status or a heartbeat: active again (same boot). */
  online(id: string): void;
  /** Heartbeats missed: what the hub's liveness sweep does (stale, no_heartbeat). */
  silent(id: string): void;
  /** An empty retained registration. */
  deregister(id: string): void;
  create(req: Partial<HttpWpkRequest> & { capability?: string }): Promise<WpkRecord>;
  /** A node's execution update, stamped with the clock's time unless `ts` is given. */
  send(nodeId: string, wpkId: string, attempt: number, state: ExecutionState, extra?: Partial<ExecutionUpdate>): void;
  /** accepted, running, then the final state. */
  complete(nodeId: string, wpkId: string, attempt: number, state?: ExecutionState, extra?: Partial<ExecutionUpdate>): void;
  get(wpkId: string): WpkRecord;
  advance(ms: number): void;
  stop(): Promise<void>;
}

/** Writes at once: a test awaits create() and cancel() without waiting out a debounce. */
const FLUSH_NOW = { soonMs: 0, lazyMs: 0, costFactor: 0 };

export function wpkRig(o: RigOptions = {}): Rig {
  const clock = o.clock ?? new FakeClock();
  const registry = new Registry();
  const counters = newCounters();
  const observers = new HubObservers();
  const sent: Sent[] = [];
  const log = o.log ?? silentLogger;
  const out = {
    publish(topic: string, payload: string | Buffer) {
      const body = JSON.parse(payload.toString()) as Record<string, unknown>;
      const parsed = t.parse(topic);
      if (parsed?.kind === 'trigger') sent.push({ topic, trigger: body as unknown as WpkTrigger });
      else if (parsed?.kind === 'node' && parsed.family === 'commands') sent.push({ topic, cancel: { ...(body as unknown as CancelCommand), node_id: parsed.nodeId } });
      else sent.push({ topic });
    },
  };
  const store = new LowdbStore({ wpks: o.adapter ?? wpkMemoryAdapter() });
  const batches: string[][] = [];
  const writeWpks = store.writeWpks.bind(store);
  store.writeWpks = (changes) => { batches.push(changes.upserted.map((w) => w.wpk_id)); return writeWpks(changes); };
  const service = new WpkService({
    topics: t, registry, out, counters, log, observe: observers, clock,
    refusals: new Refusals(t, counters, log, out.publish),
    store,
    startedAt: o.startedAt ?? clock.now(),
  }, { ...o.wpk, flush: { ...FLUSH_NOW, ...o.wpk?.flush } });
  if (o.start !== false) service.start();
  const boots = new Map<string, string>();
  const bootOf = (id: string) => boots.get(id) ?? `boot-${id}`;

  const rig: Rig = {
    clock, registry, counters, observers, service, sent, batches,
    async load() { service.restore((await store.load()).wpks); },
    triggers: (wpkId) => sent.flatMap((s) => (s.trigger && (wpkId === undefined || s.trigger.wpk_id === wpkId) ? [s.trigger] : [])),
    cancels: (wpkId) => sent.flatMap((s) => (s.cancel && (wpkId === undefined || s.cancel.wpk_id === wpkId) ? [s.cancel] : [])),
    node(id, n = {}) {
      const bootId = n.bootId ?? bootOf(id);
      boots.set(id, bootId);
      // A node's announcements have increasing ts (an equal one is a duplicate), even within one fake millisecond.
      const ts = Math.max(clock.now(), (registry.get(id)?.registration_ts ?? -1) + 1);
      const reg: Registration = { node_id: id, capabilities: n.capabilities ?? ['monitoring'], boot_id: bootId, ts };
      if (n.maxConcurrency !== undefined) reg.max_concurrency = n.maxConcurrency;
      if (n.labels) reg.labels = n.labels;
      if (n.heartbeatIntervalMs !== undefined) reg.heartbeat_interval_ms = n.heartbeatIntervalMs;
      const { record } = registry.applyRegistration(reg, { now: clock.now(), live: true });
      service.nodeChanged(id);
      return record;
    },
    offline(id, reason = 'lost') {
      registry.applyStatus(id, { state: 'offline', reason, boot_id: bootOf(id), ts: clock.now() }, { now: clock.now(), live: true });
      service.nodeChanged(id);
    },
    online(id) {
      registry.applyStatus(id, { state: 'online', boot_id: bootOf(id), ts: clock.now() }, { now: clock.now(), live: true });
      service.nodeChanged(id);
    },
    silent(id) {
      const r = registry.get(id);
      if (!r) throw new Error(`no node ${id}`);
      r.status = 'stale';
      r.status_reason = 'no_heartbeat';
      service.nodeChanged(id);
    },
    deregister(id) {
      registry.deregister(id, clock.now());
      service.nodeChanged(id);
    },
    create: (req) => service.create({ capability: 'monitoring', action: 'x', ...req } as HttpWpkRequest),
    send(nodeId, wpkId, attempt, state, extra = {}) {
      service.onExecution(nodeId, { wpk_id: wpkId, node_id: nodeId, attempt, state, ts: clock.now(), ...extra });
    },
    complete(nodeId, wpkId, attempt, state = 'succeeded', extra = {}) {
      rig.send(nodeId, wpkId, attempt, 'accepted');
      rig.send(nodeId, wpkId, attempt, 'running');
      rig.send(nodeId, wpkId, attempt, state, extra);
    },
    get(wpkId) {
      const w = service.get(wpkId);
      if (!w) throw new Error(`no WPK ${wpkId}`);
      return w;
    },
    advance: (ms) => void clock.advance(ms),
    stop: () => service.stop(),
  };
  return rig;
}

export const WPK_DEFAULTS = defaultWpkOptions;

/**
 * The hub `before` stopped, and a new one started on the same WPK document
 * `laterMs` after: the registry as `before` had it, the WPKs loaded, the
 * sweeps on. The fleet re-announcing is the test's to do.
 */
export async function restartedRig(ctx: RigCtx, before: Rig, adapter: Adapter<WpkFile>, laterMs: number): Promise<Rig> {
  await before.service.flush();
  await before.stop();
  const after = ctx.use({ adapter, clock: new FakeClock(before.clock.now() + laterMs), start: false });
  after.registry.restore([...before.registry.all()]);
  await after.load();
  after.service.start();
  return after;
}

/** [node, attempt, state] of every execution, for compact assertions. */
export const runs = (w: WpkRecord) => w.executions.map((e) => [e.node_id, e.attempt, e.state] as const);

export interface RigCtx {
  rig: Rig;
  /** Replaces the suite's rig with one built with these options (both are stopped after the test). */
  use(o: RigOptions): Rig;
  rigs: Rig[];
}

/**
 * A uvu suite whose tests each get a fresh rig (production defaults: accept
 * timeout 10 s, busy rest 2 s...) and are bounded: the body runs against a
 * fake clock, so 2 s of real time is far more than any needs.
 */
export function rigSuite(name: string): ((label: string, fn: (ctx: RigCtx) => unknown) => void) & { run(): void } {
  const s = suite<RigCtx>(name, { rig: undefined as unknown as Rig, use: () => { throw new Error('no rig yet'); }, rigs: [] });
  s.before.each((ctx) => {
    ctx.rigs = [];
    ctx.use = (o) => { const r = wpkRig(o); ctx.rigs.push(r); ctx.rig = r; return r; };
    ctx.use({});
  });
  s.after.each(async (ctx) => {
    for (const r of ctx.rigs.splice(0)) await withTimeout(r.stop(), 2000, 'rig stop');
  });
  const it = (label: string, fn: (ctx: RigCtx) => unknown) => s(label, (ctx) => withTimeout(Promise.resolve().then(() => fn(ctx)), 2000, label).then(() => undefined));
  return Object.assign(it, { run: () => s.run() });
}
