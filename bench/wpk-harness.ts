/**
 * Shared set-up of the work-package benchmarks (dispatch-latency,
 * dispatch-throughput, failover): the hub and its embedded broker in this
 * process (`startFederation`, real wpks.json and registry.json in a temp
 * dir), N real agents in a child process (wpk-fleet.ts) over loopback TCP,
 * and a probe that timestamps the hub's side of every work package.
 *
 * The probe wraps two methods on the running hub's instances, without any
 * change to hub code: the publisher the WPK service sends triggers through
 * (`hub.context.out.publish`) and the service's entry for admitted execution
 * updates (`hub.wpks.onExecution`, called by the router after the payload
 * passed its JSON and schema checks). So "trigger" is the moment the hub hands
 * a trigger to its MQTT client, and "succeeded" the moment the hub receives
 * the node's `succeeded` update, before the engine applies it. All times are
 * `performance.timeOrigin + performance.now()`: high resolution, and the same
 * clock as the fleet's, so a kill time measured there compares with a trigger
 * time measured here.
 */
import fs from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFederation, type Federation } from '../server/federation.js';
import { silentLogger } from '../lib/log.js';
import type { ExecutionUpdate, WpkTrigger } from '../lib/wire.js';
import { ChildFleet } from './child-fleet.js';
import type { FleetCommand, FleetConfig, FleetReport } from './wpk-protocol.js';

/** Node ids are `wn-0` ... `wn-{N-1}`. */
export const PREFIX = 'wn';
const FLEET = fileURLToPath(new URL('./wpk-fleet.ts', import.meta.url));

export const epochNow = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every `pollMs` (its resolution when it times something) until true, or throws after `timeoutMs`. */
export async function waitUntil(cond: () => boolean, timeoutMs: number, what: string, pollMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`benchmark condition not met in ${timeoutMs} ms: ${what}`);
    await sleep(pollMs);
  }
}

/** What the hub did and saw for one attempt of one WPK (epoch ms, high resolution). */
export interface AttemptTimes {
  wpkId: string;
  attempt: number;
  assignee: string | undefined;
  trigger: number;
  accepted?: number;
  running?: number;
  /** The node's final update (succeeded, failed, rejected, timed_out). */
  final?: number;
  finalState?: string;
}

export const attemptKey = (wpkId: string, attempt: number): string => `${wpkId}#${attempt}`;

export class WpkProbe {
  readonly attempts = new Map<string, AttemptTimes>();
  /** Called after the hub has handled each update (so creating more work here is safe). */
  onUpdate: ((u: ExecutionUpdate, at: number) => void) | undefined;
  onTrigger: ((t: AttemptTimes) => void) | undefined;
  record = true;

  constructor(fed: Federation) {
    const isTrigger = (topic: string) => fed.hub.context.topics.parse(topic)?.kind === 'trigger';
    const out = fed.hub.context.out;
    const publish = out.publish.bind(out);
    out.publish = (topic, payload, opts) => {
      const at = epochNow();
      publish(topic, payload, opts);
      // Broadcast `wpk/{cap}/trigger` and addressed `wpk/{cap}/trigger/{node}` (967cc92) alike.
      if (!isTrigger(topic)) return;
      const t = JSON.parse(String(payload)) as WpkTrigger;
      const times: AttemptTimes = { wpkId: t.wpk_id, attempt: t.attempt, assignee: t.assignee, trigger: at };
      if (this.record) this.attempts.set(attemptKey(t.wpk_id, t.attempt), times);
      this.onTrigger?.(times);
    };
    const svc = fed.hub.wpks as unknown as { onExecution(nodeId: string, u: ExecutionUpdate): void };
    const onExecution = svc.onExecution.bind(svc);
    svc.onExecution = (nodeId, u) => {
      const at = epochNow();
      onExecution(nodeId, u);
      const a = this.attempts.get(attemptKey(u.wpk_id, u.attempt));
      if (a) {
        if (u.state === 'accepted') a.accepted ??= at;
        else if (u.state === 'running') a.running ??= at;
        else if (a.final === undefined) { a.final = at; a.finalState = u.state; }
      }
      this.onUpdate?.(u, at);
    };
  }

  clear(): void { this.attempts.clear(); }
}

/** The WPK fleet child process and its IPC channel. */
export class FleetProcess extends ChildFleet<FleetReport, FleetCommand> {
  static spawn(cfg: FleetConfig, timeoutMs = 180_000): Promise<FleetProcess> {
    return ChildFleet.start((child) => new FleetProcess(child, 'fleet', 15_000), FLEET, [JSON.stringify(cfg)], timeoutMs);
  }

  stats(): Promise<Extract<FleetReport, { type: 'stats' }>> {
    return this.ask({ cmd: 'stats' }, 'stats');
  }

  trace(): Promise<Extract<FleetReport, { type: 'trace' }>> {
    return this.ask({ cmd: 'trace' }, 'trace');
  }

  cut(ids: string[], how: 'silent' | 'close'): Promise<Extract<FleetReport, { type: 'cut' }>> {
    return this.ask({ cmd: 'cut', ids, how }, 'cut');
  }
}

export interface WpkBenchOptions {
  nodes: number;
  capability?: string;
  concurrency?: number;
  keepaliveS?: number;
  heartbeatMs?: number;
  responder?: boolean;
  /**
   * TCP_NODELAY on both ends of the fleet's connections. Default true, as the
   * product since 967cc92: the broker's own listener (broker/tcp-listener.ts,
   * `createServer({ noDelay: true })`) and the fleet's sockets (`net.connect`
   * with `noDelay: true`, as agent/transport.ts). false (`--nagle`, an
   * ablation): a listener of this benchmark's own (`net.createServer()`,
   * Nagle on, handing sockets to the public `broker.handle()`) and plain
   * sockets in the fleet.
   */
  noDelay?: boolean;
  /** See FleetConfig.ownCapability. */
  ownCapability?: boolean;
  /** See FleetConfig.trace. */
  trace?: boolean;
}

export interface WpkBench {
  fed: Federation;
  /** The hub's data dir (registry.json, wpks.json). */
  dir: string;
  fleet: FleetProcess;
  probe: WpkProbe;
  capability: string;
  /** The capability of the i-th WPK: the shared one, or (ownCapability) node i mod N's own. */
  capabilityOf(i: number): string;
  stop(): Promise<void>;
}

/** Hub + broker here, `nodes` agents in a child process, all registered and active. */
export async function startWpkBench(o: WpkBenchOptions): Promise<WpkBench> {
  const capability = o.capability ?? 'bench';
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-bench-wpk-'));
  const fed = await startFederation({ mqttPort: 0, httpPort: 0, dataDir: dir, logger: silentLogger });
  const probe = new WpkProbe(fed);
  let fleet: FleetProcess | undefined;
  let listener: net.Server | undefined;
  const stop = async () => {
    await fleet?.stop();
    await fed.stop(); // also cuts the connections handed to broker.handle()
    if (listener?.listening) await new Promise<void>((r) => listener!.close(() => r()));
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    let port = fed.broker!.port!;
    const noDelay = o.noDelay ?? true;
    if (!noDelay) {
      const server = net.createServer({ noDelay: false }, (sock) => fed.broker!.handle(sock));
      listener = server;
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    }
    fleet = await FleetProcess.spawn({
      host: '127.0.0.1', port, nodes: o.nodes, prefix: PREFIX, capability,
      concurrency: o.concurrency ?? 4, keepaliveS: o.keepaliveS ?? 60, heartbeatMs: o.heartbeatMs ?? 5000,
      rate: 1000, responder: o.responder ?? false, noDelay, ownCapability: o.ownCapability ?? false,
      trace: o.trace ?? false,
    });
    await waitUntil(() => fed.hub.countNodesByStatus().active >= o.nodes, 60_000, `${o.nodes} active nodes`);
    const capabilityOf = (i: number) => (o.ownCapability ? `${PREFIX}-${i % o.nodes}` : capability);
    return { fed, dir, fleet, probe, capability, capabilityOf, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Open loop: calls `fire(i)` for i = 0..total-1 at `ratePerS`, on schedule
 * (a late timer catches up at once), so a slow system queues work instead of
 * being offered less. Resolves after the last call.
 */
export async function paced(ratePerS: number, total: number, fire: (i: number) => void): Promise<void> {
  const t0 = performance.now();
  let i = 0;
  while (i < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * ratePerS) / 1000) + 1);
    while (i < due) fire(i++);
    if (i < total) await sleep(1);
  }
}
