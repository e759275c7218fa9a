/**
 * Work packages end to end with the real parts: a real `edgefed start`
 * process and real agents over loopback TCP. The hub is killed with SIGKILL
 * in the middle of a WPK; the agent keeps running it, spools its updates,
 * and the next hub (same data dir) still sees the WPK reach its final state.
 * And the assignee agent dying mid-WPK moves the WPK to another agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent, type Agent, type AgentOptions } from '../agent/index.js';
import type { WpkRecord } from '../hub/wpk/types.js';
import { silentLogger } from '../lib/log.js';
import { kill9, spawnHub, stopGracefully, type HubProcess } from './helpers/process.js';
import { waitFor, withTimeout } from './helpers/time.js';
import { CLI_ARGS } from './helpers/cli.js';


interface Ctx { dir: string; hubs: HubProcess[]; agents: Agent[]; children: ChildProcess[] }
const test = suite<Ctx>('work packages end to end (hub process, real agents)', { dir: '', hubs: [], agents: [], children: [] });
test.before.each(async (ctx) => {
  ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-wpk-e2e-'));
  ctx.hubs = [];
  ctx.agents = [];
  ctx.children = [];
});
test.after.each(async (ctx) => {
  for (const c of ctx.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(ctx.agents.map((a) => a.stop()));
  for (const h of ctx.hubs) await stopGracefully(h).catch(() => h.child.kill('SIGKILL'));
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

async function agent(ctx: Ctx, hub: HubProcess, nodeId: string, extra: Partial<AgentOptions> = {}): Promise<Agent> {
  const a = await startAgent({
    nodeId, capabilities: ['basic-actions'], brokerUrl: hub.mqttUrl, heartbeatIntervalMs: 200,
    reconnectMinMs: 50, reconnectMaxMs: 200, logger: silentLogger, ...extra,
  });
  ctx.agents.push(a);
  return a;
}

async function http<T>(hub: HubProcess, method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> {
  const init: RequestInit = body === undefined ? { method } : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
  const res = await withTimeout(fetch(`${hub.httpUrl}${p}`, init), 3000, `${method} ${p}`);
  return { status: res.status, body: (await res.json()) as T };
}

/** `edgefed agent` as its own process, so that it can really die. */
function agentProcess(ctx: Ctx, hub: HubProcess, nodeId: string): ChildProcess {
  const child = spawn(process.execPath, [
    ...CLI_ARGS, 'agent', '--id', nodeId, '--capabilities', 'basic-actions', '--broker', hub.mqttUrl,
    '--heartbeat-interval', '200ms', '--keepalive', '2', '--spool-dir', path.join(ctx.dir, `spool-${nodeId}`), '--log-level', 'warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume();
  ctx.children.push(child);
  return child;
}

const wpk = async (hub: HubProcess, id: string) => (await http<WpkRecord>(hub, 'GET', `/federation/wpk/${id}`)).body;
const active = async (hub: HubProcess, id: string) => (await http<{ status: string }>(hub, 'GET', `/federation/nodes/${id}`)).body.status === 'active';

test('kill -9 of the hub mid-WPK: the agent finishes offline, spools, replays; the next hub records the success', (ctx) => withTimeout((async () => {
  const hub1 = await spawnHub(['--data-dir', ctx.dir]);
  ctx.hubs.push(hub1);
  await agent(ctx, hub1, 'edge-1', { spoolDir: path.join(ctx.dir, 'spool') });
  await waitFor(() => active(hub1, 'edge-1'), { timeoutMs: 5000, label: 'edge-1 active' });
  const created = await http<WpkRecord>(hub1, 'POST', '/federation/wpk', { capability: 'basic-actions', action: 'sleep', params: { ms: 1500 } });
  assert.is(created.status, 201);
  const id = created.body.wpk_id;
  await waitFor(async () => (await wpk(hub1, id)).state === 'running', { timeoutMs: 5000, label: 'running' });
  await kill9(hub1);
  ctx.hubs = [];

  // Same data dir and MQTT port: the agent reconnects by itself.
  const hub2 = await spawnHub(['--data-dir', ctx.dir, '--mqtt-port', new URL(hub1.mqttUrl).port]);
  ctx.hubs.push(hub2);
  const restored = await wpk(hub2, id);
  // What reached disk before the kill: at least the dispatch (create() answers only once it is written);
  // an update within the last ~50 ms flush delay may be missing, and the node's next update covers it.
  assert.ok(['dispatched', 'running', 'succeeded'].includes(restored.state), `restored as ${restored.state}`);
  const done = await waitFor(async () => { const w = await wpk(hub2, id); return w.state === 'succeeded' ? w : undefined; }, { timeoutMs: 8000, label: 'succeeded on the new hub' });
  assert.equal(done.result, { slept_ms: 1500 });
  assert.equal(done.executions.map((e) => [e.node_id, e.attempt, e.state]), [['edge-1', 1, 'succeeded']]);
})(), 40_000, 'hub kill -9 mid-WPK'));

test('the assignee agent dies mid-WPK: the hub moves the WPK to the other agent, which runs it once', (ctx) => withTimeout((async () => {
  const hub = await spawnHub(['--data-dir', ctx.dir]);
  ctx.hubs.push(hub);
  const procs = new Map<string, ChildProcess>();
  for (const id of ['edge-a', 'edge-b']) procs.set(id, agentProcess(ctx, hub, id));
  await waitFor(async () => (await active(hub, 'edge-a')) && (await active(hub, 'edge-b')), { timeoutMs: 10_000, label: 'both active' });
  const id = (await http<WpkRecord>(hub, 'POST', '/federation/wpk', { capability: 'basic-actions', action: 'sleep', params: { ms: 800 } })).body.wpk_id;
  const first = await waitFor(async () => { const w = await wpk(hub, id); return w.state === 'running' ? w.assignee : undefined; }, { timeoutMs: 5000, label: 'running' });
  procs.get(first)!.kill('SIGKILL'); // no goodbye: the broker publishes its will
  const done = await waitFor(async () => { const w = await wpk(hub, id); return w.state === 'succeeded' ? w : undefined; }, { timeoutMs: 8000, label: 'succeeded elsewhere' });
  const other = first === 'edge-a' ? 'edge-b' : 'edge-a';
  assert.equal(done.executions.map((e) => [e.node_id, e.attempt, e.state]), [[first, 1, 'lost'], [other, 2, 'succeeded']]);
})(), 40_000, 'agent death mid-WPK'));

test.run();
