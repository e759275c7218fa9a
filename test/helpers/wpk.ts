/**
 * The hub's side of the work-package wire, for agent tests: a self-started
 * aedes over TCP (restartable on the same port), a plain MQTT client that
 * publishes triggers and commands and collects execution updates (each
 * checked against the hub's JSON Schema), and an agent started against it.
 * Every handle is registered with the test's Scope.
 */
import net from 'node:net';
import { Aedes } from 'aedes';
import { connect, type MqttClient } from 'mqtt';
import * as assert from 'uvu/assert';
import { startAgent, type ActionContext, type ActionHandler, type Agent, type AgentOptions } from '../../agent/index.js';
import { topics } from '../../lib/topics.js';
import type { ExecutionUpdate, WpkTrigger } from '../../lib/wire.js';
import { validators } from '../../schemas/index.js';
import type { Scope } from './scope.js';
import { waitFor } from './time.js';
import { capturingLogger, type LogLine } from './logs.js';

const t = topics();
export const NODE = 'edge-001';

export interface TestBroker { broker: Aedes; port: number; listen(port?: number): Promise<number>; close(): Promise<void> }

/** aedes with one TCP listener per `listen` call (port 0 picks a free one); closing it cuts every socket. */
export async function startBroker(scope: Scope, port = 0): Promise<TestBroker> {
  const broker = await Aedes.createBroker();
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const listen = async (p = 0): Promise<number> => {
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      broker.handle(socket);
    });
    servers.push(server);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(p, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  };
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    })();
    return closed;
  };
  scope.defer(close);
  return { broker, port: await listen(port), listen, close };
}

export interface Hub {
  client: MqttClient;
  /** Every execution update seen, in arrival order, each already checked against the schema. */
  updates: ExecutionUpdate[];
  beats: Array<Record<string, unknown>>;
  of(wpkId: string): ExecutionUpdate[];
  states(wpkId: string): string[];
  trigger(overrides?: Partial<WpkTrigger>): Promise<WpkTrigger>;
  command(body: Record<string, unknown>): Promise<void>;
  final(wpkId: string, timeoutMs?: number): Promise<ExecutionUpdate>;
}

const FINAL = new Set(['succeeded', 'failed', 'timed_out', 'rejected']);
let wpkSeq = 0;

/** The hub's side of the wire: publishes triggers and commands, collects execution updates and heartbeats. */
export async function hubOn(scope: Scope, port: number): Promise<Hub> {
  const client = connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, clientId: `hub-${Math.random().toString(36).slice(2)}` });
  scope.defer(() => client.endAsync(true));
  const updates: ExecutionUpdate[] = [];
  const beats: Array<Record<string, unknown>> = [];
  const problems: string[] = [];
  client.on('message', (topic, payload, packet) => {
    const body = JSON.parse(payload.toString()) as Record<string, unknown>;
    const parsed = t.parse(topic);
    if (parsed?.kind === 'node' && parsed.family === 'heartbeat') beats.push(body);
    if (parsed?.kind !== 'node' || parsed.family !== 'executions') return;
    const checked = validators.executionUpdate(body);
    if (!checked.ok) problems.push(`${payload.toString()}: ${checked.errors.join('; ')}`);
    if (packet.retain || packet.qos !== 1) problems.push(`${topic} must be QoS 1, not retained`);
    if (parsed.wpkId !== body.wpk_id || parsed.nodeId !== body.node_id) problems.push(`${topic} does not match its payload`);
    updates.push(body as unknown as ExecutionUpdate);
  });
  await client.subscribeAsync({ [t.allExecutions()]: { qos: 1 }, [t.allNodes('heartbeat')]: { qos: 0 } });
  const of = (wpkId: string) => {
    assert.equal(problems, [], 'every update valid');
    return updates.filter((u) => u.wpk_id === wpkId);
  };
  return {
    client, updates, beats, of,
    states: (wpkId) => of(wpkId).map((u) => u.state),
    async trigger(overrides = {}) {
      const now = Date.now();
      const trigger: WpkTrigger = {
        wpk_id: `wpk_${++wpkSeq}`, capability: 'basic-actions', action: 'echo', mode: 'one', assignee: NODE,
        attempt: 1, created_at: now, deadline: now + 60_000, ...overrides,
      };
      assert.equal(validators.wpkTrigger(trigger).ok, true, 'the test publishes valid triggers');
      await client.publishAsync(t.trigger(trigger.capability), JSON.stringify(trigger), { qos: 1 });
      return trigger;
    },
    async command(body) {
      await client.publishAsync(t.commands(NODE), JSON.stringify({ ts: Date.now(), ...body }), { qos: 1 });
    },
    final: (wpkId, timeoutMs = 2000) => waitFor(() => of(wpkId).find((u) => FINAL.has(u.state)), { label: `final update of ${wpkId}`, timeoutMs }),
  };
}

export interface TestAgent { agent: Agent; logs: LogLine[] }

export async function agentOn(scope: Scope, port: number, extra: Partial<AgentOptions> = {}): Promise<TestAgent> {
  const logs: LogLine[] = [];
  const agent = await startAgent({
    nodeId: NODE,
    capabilities: ['monitoring', 'basic-actions'],
    brokerUrl: `mqtt://127.0.0.1:${port}`,
    heartbeatIntervalMs: 100,
    reconnectMinMs: 20,
    reconnectMaxMs: 100,
    logger: capturingLogger(logs),
    ...extra,
  });
  scope.defer(() => agent.stop());
  await waitFor(() => agent.connected, { label: 'agent connected' });
  return { agent, logs };
}

/** A started broker, the hub's client and a connected agent. */
export async function setup(scope: Scope, extra: Partial<AgentOptions> = {}) {
  const b = await startBroker(scope);
  const hub = await hubOn(scope, b.port);
  const { agent, logs } = await agentOn(scope, b.port, extra);
  return { b, hub, agent, logs };
}

/** An action the test finishes by hand: `release(value)` settles every call made so far, in call order. */
export function gated(): { action: ActionHandler; calls: number; release(value?: unknown): void; contexts: ActionContext[] } {
  const waiting: Array<(value: unknown) => void> = [];
  const gate = {
    calls: 0,
    contexts: [] as ActionContext[],
    action: ((_params, ctx) => {
      gate.calls += 1;
      gate.contexts.push(ctx);
      return new Promise((resolve) => waiting.push(resolve));
    }) as ActionHandler,
    release(value?: unknown) {
      for (const resolve of waiting.splice(0)) resolve(value);
    },
  };
  return gate;
}

export const states = (updates: ExecutionUpdate[]) => updates.map((u) => `${u.wpk_id} ${u.state}${u.progress === undefined ? '' : ` ${u.progress}`}`);

/**
 * What reached the new broker, less mqtt.js re-sending a publish whose PUBACK
 * the outage swallowed (QoS 1 is at least once): a re-send is byte-identical,
 * ts included, to what the old broker already delivered.
 */
export function fresh(after: ExecutionUpdate[], before: ExecutionUpdate[]): ExecutionUpdate[] {
  const seen = new Set(before.map((u) => JSON.stringify(u)));
  return after.filter((u) => !seen.has(JSON.stringify(u)));
}
