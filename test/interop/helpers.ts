/**
 * Interop fixtures: the REAL `mosquitto_pub` / `mosquitto_sub` binaries
 * (Debian's mosquitto-clients) against a real `edgefed start` process, the
 * way a device maker or an operator would use them from a shell.
 *
 * Every child started here is tracked and killed by `killStrays()` (call it
 * from each suite's after.each), every wait is bounded, and every
 * mosquitto_sub gets `-W` so it ends by itself even if a test forgets it.
 * This file is not a test file: the interop pattern '\.interop\.ts$' skips it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { kill9, spawnHub, stopGracefully, type HubProcess } from '../helpers/process.js';
import { freePort } from '../helpers/ports.js';
import { waitFor, withTimeout } from '../helpers/time.js';

export { kill9, spawnHub, stopGracefully, type HubProcess };

export const TOPIC_ROOT = 'edgefed/v1';
export const topic = {
  registration: (id: string) => `${TOPIC_ROOT}/nodes/${id}/registration`,
  status: (id: string) => `${TOPIC_ROOT}/nodes/${id}/status`,
  commands: (id: string) => `${TOPIC_ROOT}/nodes/${id}/commands`,
  hubStatus: `${TOPIC_ROOT}/hub/status`,
  hubError: (id: string) => `${TOPIC_ROOT}/hub/errors/${id}`,
};

const INSTALL_HINT = 'install Debian\'s mosquitto-clients (apt-get update && apt-get install -y mosquitto-clients; .ci/run does it)';

// ---------------------------------------------------------------------------
// Child processes

export interface Exit { code: number | null; signal: NodeJS.Signals | null }

const live = new Set<ChildProcess>();

function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function track(command: string, args: string[], stdin: boolean): { child: ChildProcess; exited: Promise<Exit>; spawned: Promise<void> } {
  const child = spawn(command, args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  live.add(child);
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (err: NodeJS.ErrnoException) => {
      live.delete(child);
      reject(err.code === 'ENOENT' ? new Error(`${command} not found on PATH: ${INSTALL_HINT}`) : err);
    });
  });
  spawned.catch(() => undefined); // observed by callers; never an unhandled rejection
  const exited = exitOf(child).finally(() => live.delete(child));
  return { child, exited, spawned };
}

/** SIGKILLs every mosquitto child still running (bounded); for after.each hooks. Never throws. */
export async function killStrays(): Promise<void> {
  const children = [...live];
  for (const c of children) c.kill('SIGKILL');
  await withTimeout(Promise.all(children.map(exitOf)), 3000, 'mosquitto children exit').catch(() => undefined);
  live.clear();
}

/** Fails with a clear message when the mosquitto clients are not installed (the interop suite must not pass without them). */
export async function requireMosquittoClients(): Promise<void> {
  for (const bin of ['mosquitto_pub', 'mosquitto_sub']) {
    const { exited, spawned, child } = track(bin, ['--help'], false);
    child.stdout!.resume();
    child.stderr!.resume();
    await withTimeout(spawned, 5000, `${bin} start`);
    await withTimeout(exited, 5000, `${bin} --help`);
  }
}

/** `-h 127.0.0.1 -p PORT` of a hub's embedded broker (loopback only, as the tests require). */
export function brokerArgs(hub: HubProcess): string[] {
  const url = new URL(hub.mqttUrl);
  if (url.hostname !== '127.0.0.1') throw new Error(`interop tests use loopback only, the hub listens on ${hub.mqttUrl}`);
  return ['-h', '127.0.0.1', '-p', url.port];
}

/** A real mosquitto broker on a free loopback port (Debian's `mosquitto`), for external-broker tests. */
export async function startMosquitto(): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  // mosquitto 2.0 with -p and no config listens on loopback only, anonymous allowed.
  const bin = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto'; // /usr/sbin is not always on PATH
  const { child, exited, spawned } = track(bin, ['-p', String(port)], false);
  child.stdout!.resume();
  child.stderr!.resume();
  await spawned.catch((err: Error) => { throw new Error(`${err.message} (the broker: apt-get install -y mosquitto)`); });
  await waitFor(() => new Promise<boolean>((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  }), { timeoutMs: 5000, intervalMs: 50, label: `mosquitto listening on ${port}` });
  return {
    port,
    async stop() {
      child.kill('SIGTERM');
      await withTimeout(exited, 5000, 'mosquitto exit').catch(() => child.kill('SIGKILL'));
    },
  };
}


// ---------------------------------------------------------------------------
// mosquitto_pub

export interface PubResult extends Exit { stdout: string; stderr: string }

/**
 * Runs `mosquitto_pub` to completion (with QoS 1 it returns after the PUBACK).
 * `input` is written to its stdin (for `-s`). Rejects on a non-zero exit or
 * after `timeoutMs` (the child is killed).
 */
export async function mosquittoPub(broker: string[], args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<PubResult> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const { child, exited, spawned } = track('mosquitto_pub', [...broker, ...args], opts.input !== undefined);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  await spawned;
  if (opts.input !== undefined) {
    child.stdin!.on('error', () => undefined); // EPIPE if it dies early: its exit code tells
    child.stdin!.end(opts.input);
  }
  const exit = await withTimeout(exited, timeoutMs, `mosquitto_pub ${args.join(' ').slice(0, 200)}`).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  if (exit.code !== 0) {
    throw new Error(`mosquitto_pub ${args.join(' ').slice(0, 200)} exited ${exit.code ?? exit.signal}: ${stderr.trim()}`);
  }
  return { ...exit, stdout, stderr };
}

/** Publishes a JSON registration, retained, QoS 1, as a device would with `mosquitto_pub -r -q 1`. */
export function publishRegistration(broker: string[], reg: Record<string, unknown>): Promise<PubResult> {
  return mosquittoPub(broker, ['-r', '-q', '1', '-t', topic.registration(String(reg.node_id)), '-m', JSON.stringify(reg)]);
}

export function registration(nodeId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { node_id: nodeId, capabilities: ['monitoring'], boot_id: `boot-${nodeId}`, ts: Date.now(), ...extra };
}

// ---------------------------------------------------------------------------
// mosquitto_sub

/** One line of `mosquitto_sub -v`: "<topic> <payload>"; an empty payload prints as "(null)". */
export interface Message { topic: string; payload: string }

export function parseVerboseLine(line: string): Message {
  const space = line.indexOf(' ');
  return space < 0 ? { topic: line, payload: '' } : { topic: line.slice(0, space), payload: line.slice(space + 1) };
}

export interface SubResult extends Exit { messages: Message[]; stderr: string; timedOut: boolean }

/**
 * A running `mosquitto_sub -v`. Give it `-W` (added as `-W 10` if missing) and
 * usually `-C`, so it ends by itself; `done()` waits for that end.
 */
export class MosquittoSub {
  readonly messages: Message[] = [];
  private stderrText = '';
  private readonly listeners = new Set<() => void>();

  private constructor(readonly child: ChildProcess, readonly exited: Promise<Exit>, readonly args: string[]) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.messages.push(parseVerboseLine(line));
      for (const l of this.listeners) l();
    });
    child.stderr!.on('data', (d: Buffer) => { this.stderrText += d.toString(); });
    void exited.then(() => { for (const l of this.listeners) l(); });
  }

  static async start(broker: string[], args: string[]): Promise<MosquittoSub> {
    const full = [...broker, ...(args.includes('-v') ? [] : ['-v']), ...(args.includes('-W') ? [] : ['-W', '10']), ...args];
    const { child, exited, spawned } = track('mosquitto_sub', full, false);
    const sub = new MosquittoSub(child, exited, full);
    await spawned;
    return sub;
  }

  get stderr(): string { return this.stderrText; }
  get running(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  /** Resolves with the first message (already seen or to come) that matches; rejects if the process ends first or on timeout. */
  next(match: (m: Message) => boolean, timeoutMs = 3000, label = 'message'): Promise<Message> {
    let listener: (() => void) | undefined;
    const found = new Promise<Message>((resolve, reject) => {
      listener = () => {
        const m = this.messages.find(match);
        if (m) return resolve(m);
        if (!this.running) reject(new Error(`mosquitto_sub ended (${this.child.exitCode ?? this.child.signalCode}) before ${label}; stderr: ${this.stderr.trim()}; saw ${JSON.stringify(this.messages)}`));
      };
      this.listeners.add(listener);
      listener();
    });
    return withTimeout(found, timeoutMs, `mosquitto_sub: ${label}`).finally(() => { if (listener) this.listeners.delete(listener); });
  }

  /** The retained hub status arrives right after SUBACK: seeing it proves the subscription is in place. Needs `-t edgefed/v1/hub/status` (or `edgefed/#`). */
  ready(timeoutMs = 3000): Promise<Message> {
    return this.next((m) => m.topic === topic.hubStatus, timeoutMs, 'the retained hub status (subscribed)');
  }

  /** Waits for the process to end by itself (`-C` count reached or `-W` timeout; mosquitto_sub exits 27 on -W). */
  async done(timeoutMs = 15_000): Promise<SubResult> {
    const exit = await withTimeout(this.exited, timeoutMs, `mosquitto_sub ${this.args.join(' ')} to end`);
    return { ...exit, messages: [...this.messages], stderr: this.stderr, timedOut: exit.code === 27 };
  }

  /** Ends it abruptly (SIGKILL by default: no DISCONNECT, so its will fires). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    this.child.kill(signal);
    return withTimeout(this.exited, 5000, 'mosquitto_sub exit after kill');
  }
}

/** Runs `mosquitto_sub -v ARGS` until it ends by itself (give `-C` and `-W`). */
export async function mosquittoSubOnce(broker: string[], args: string[], timeoutMs = 15_000): Promise<SubResult> {
  const sub = await MosquittoSub.start(broker, args);
  return sub.done(timeoutMs);
}

/** What a fresh subscriber to a node's registration topic gets: the retained message, or nothing within `seconds`. */
export async function retainedRegistration(broker: string[], nodeId: string, seconds = 2): Promise<Message | undefined> {
  const r = await mosquittoSubOnce(broker, ['-t', topic.registration(nodeId), '-C', '1', '-W', String(seconds)]);
  if (r.code !== 0 && !r.timedOut) throw new Error(`mosquitto_sub exited ${r.code ?? r.signal}: ${r.stderr}`);
  return r.messages[0];
}

/**
 * A device that holds an MQTT session with a Last Will, using mosquitto_sub:
 * connects as `clientId` with `--will-topic/--will-payload/--will-retain/--will-qos 1`,
 * and is ready once it sees the retained hub status. `kill()` (SIGKILL) makes the broker publish the will.
 */
export async function willHolder(broker: string[], clientId: string, nodeId: string, will: Record<string, unknown>): Promise<MosquittoSub> {
  const sub = await MosquittoSub.start(broker, [
    '-i', clientId, '-k', '5', '-W', '60',
    '-t', topic.commands(nodeId), '-t', topic.hubStatus,
    '--will-topic', topic.status(nodeId), '--will-payload', JSON.stringify(will), '--will-retain', '--will-qos', '1',
  ]);
  await sub.ready();
  return sub;
}

// ---------------------------------------------------------------------------
// The hub's HTTP API

export interface NodeView { node_id: string; status: string; status_reason: string | null; boot_id: string; capabilities: string[]; [k: string]: unknown }

export async function getJson<T>(hub: HubProcess, pathAndQuery: string): Promise<{ status: number; body: T }> {
  const res = await withTimeout(fetch(`${hub.httpUrl}${pathAndQuery}`), 3000, `GET ${pathAndQuery}`);
  return { status: res.status, body: (await res.json()) as T };
}

export async function listNodes(hub: HubProcess, query = ''): Promise<NodeView[]> {
  const { status, body } = await getJson<{ nodes: NodeView[] }>(hub, `/federation/nodes${query}`);
  if (status !== 200) throw new Error(`GET /federation/nodes${query}: HTTP ${status}`);
  return body.nodes;
}

export async function getNode(hub: HubProcess, nodeId: string): Promise<NodeView | undefined> {
  const { status, body } = await getJson<NodeView>(hub, `/federation/nodes/${encodeURIComponent(nodeId)}`);
  if (status === 404) return undefined;
  if (status !== 200) throw new Error(`GET /federation/nodes/${nodeId}: HTTP ${status}`);
  return body;
}

export interface Health { counters: { ignored: { older_session: number }; refusals: Record<string, number> }; [k: string]: unknown }

export async function health(hub: HubProcess): Promise<Health> {
  return (await getJson<Health>(hub, '/health')).body;
}

/** Polls until the node has `status` (and passes `extra`, if given); resolves with it. */
export function waitForNodeStatus(hub: HubProcess, nodeId: string, status: string, timeoutMs = 3000): Promise<NodeView> {
  return waitFor(async () => {
    const n = await getNode(hub, nodeId);
    return n?.status === status ? n : undefined;
  }, { timeoutMs, intervalMs: 20, label: `node ${nodeId} ${status}` });
}

// ---------------------------------------------------------------------------
// Hubs and data dirs

export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * `edgefed start` (spawnHub), returned once the hub has logged that it is
 * subscribed ("hub connected to the broker"). The hub subscribes before it
 * logs "edgefed ready" (a registration sent earlier would reach it as a
 * retained replay and be recorded `stale`); the extra wait keeps these tests
 * honest if that order ever regresses.
 */
export async function spawnListeningHub(args: string[]): Promise<HubProcess> {
  const hub = await spawnHub(args);
  try {
    await waitFor(() => hub.lines.some((l) => l.includes('"msg":"hub connected to the broker"')), {
      timeoutMs: 10_000, intervalMs: 10, label: 'hub subscribed ("hub connected to the broker" logged)',
    });
  } catch (err) {
    await stopHub(hub);
    throw err;
  }
  return hub;
}

/** Stops a hub (SIGTERM, then SIGKILL), never throwing: for after hooks. */
export async function stopHub(hub: HubProcess | undefined): Promise<void> {
  if (!hub) return;
  await stopGracefully(hub).catch(async () => {
    hub.child.kill('SIGKILL');
    await withTimeout(hub.exited, 5000, 'hub exit').catch(() => undefined);
  });
}

/**
 * Waits until the hub's registry file holds exactly `ids` as its live
 * (non-deregistered) nodes and each of `deregistered` marked deregistered:
 * what a kill -9 can no longer take away (the hub flushes on a short debounce).
 */
export async function waitForFlushed(dataDir: string, ids: string[], deregistered: string[] = [], timeoutMs = 5000): Promise<void> {
  const want = [...ids].sort().join(',');
  await waitFor(async () => {
    const file = JSON.parse(await fs.readFile(path.join(dataDir, 'registry.json'), 'utf8')) as { nodes: Record<string, { status: string }> };
    const have = Object.entries(file.nodes).filter(([, n]) => n.status !== 'deregistered').map(([id]) => id).sort().join(',');
    return have === want && deregistered.every((id) => file.nodes[id]?.status === 'deregistered');
  }, { timeoutMs, intervalMs: 50, label: `registry.json holds ${want}${deregistered.length ? ` and deregistered ${deregistered.join(',')}` : ''}` });
}

// ---------------------------------------------------------------------------
// Suites

/**
 * One hub process shared by the tests of a file, started by the first test
 * that asks (so a failure to start fails tests, which a throwing uvu `before`
 * hook would not: uvu 0.5 swallows it and exits 0).
 */
export class SharedHub {
  private starting: Promise<{ hub: HubProcess; broker: string[]; dir: string }> | undefined;
  private hub: HubProcess | undefined;
  private dir: string | undefined;

  constructor(private readonly prefix: string, private readonly args: string[] = []) {}

  get(): Promise<{ hub: HubProcess; broker: string[]; dir: string }> {
    this.starting ??= (async () => {
      await requireMosquittoClients();
      this.dir = await tempDir(this.prefix);
      this.hub = await spawnListeningHub(['--data-dir', this.dir, ...this.args]);
      return { hub: this.hub, broker: brokerArgs(this.hub), dir: this.dir };
    })();
    return this.starting;
  }

  /** Never throws: for after hooks. */
  async close(): Promise<void> {
    await killStrays();
    await stopHub(this.hub);
    if (this.dir) await fs.rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
    this.starting = undefined;
    this.hub = undefined;
    this.dir = undefined;
  }
}

/** Bounds a uvu test body: uvu has no timeouts. */
export function within<T>(ms: number, label: string, body: (ctx: T) => Promise<void>): (ctx: T) => Promise<void> {
  return (ctx) => withTimeout(body(ctx), ms, label);
}
