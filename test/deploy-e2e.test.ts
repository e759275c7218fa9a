/**
 * Deployments end to end (issue 15), one test per feature, with real agents
 * running real actions: a rollout at its rate stopped by an abort criterion
 * (through the real CLI, with /metrics), a continuous WPK that reaches
 * agents started later, a scheduled start, and a rollout that goes on across
 * a kill -9 of a real hub process without running any node twice.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent, type Agent, type AgentOptions } from '../agent/index.js';
import type { ApiWpk } from '../lib/api.js';
import { validators } from '../schemas/index.js';
import { silentLogger } from '../lib/log.js';
import type { Federation } from '../server/federation.js';
import { CLI_ARGS } from './helpers/cli.js';
import { api, federation, post } from './helpers/federation.js';
import { kill9, spawnHub, stopGracefully } from './helpers/process.js';
import { parseExposition, sample } from './helpers/prometheus.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';

const test = suite('deployments end to end (real agents)');

/** Which nodes ran the `update` action, in order: what the devices saw, whatever the hub recorded. */
type Ran = string[];

async function fleet(scope: Scope, ids: string[], connect: Pick<AgentOptions, 'connect' | 'brokerUrl'>, ran: Ran, fails: string[] = []): Promise<Agent[]> {
  return Promise.all(ids.map(async (id) => {
    const agent = await startAgent({
      nodeId: id, capabilities: ['firmware'], heartbeatIntervalMs: 500, logger: silentLogger, reconnectMinMs: 50, reconnectMaxMs: 200,
      ...connect,
      actions: {
        update: async () => {
          ran.push(id);
          await new Promise((r) => setTimeout(r, 100));
          if (fails.includes(id)) throw new Error('flash write failed');
          return { version: '2.0' };
        },
      },
    });
    scope.defer(() => agent.stop());
    return agent;
  }));
}

async function inProcess(scope: Scope): Promise<Federation> {
  const fed = await federation();
  scope.defer(() => fed.stop());
  return fed;
}

const inMemory = (fed: Federation): Pick<AgentOptions, 'connect'> => ({ connect: (opts) => fed.broker!.connectInMemory(opts) });

async function allActive(fed: Federation, ids: string[]): Promise<void> {
  await waitFor(() => ids.every((id) => fed.hub.node(id)?.status === 'active'), { label: `${ids.join(',')} active`, timeoutMs: 3000 });
}

function cli(scope: Scope, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  scope.defer(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  return withTimeout(new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err }))), 15_000, `edgefed ${args.join(' ')}`);
}

test('rollout: trigger --rate --abort-on --wait dispatches one at a time and aborts; the rest never run', bounded(async (scope) => {
  const fed = await inProcess(scope);
  const ids = ['fw-1', 'fw-2', 'fw-3', 'fw-4', 'fw-5', 'fw-6'];
  const ran: Ran = [];
  await fleet(scope, ids, inMemory(fed), ran, ['fw-2', 'fw-3']);
  await allActive(fed, ids);
  const run = await cli(scope, ['trigger', '--hub', fed.api.url, '--capability', 'firmware', '--action', 'update', '--mode', 'all',
    '--rate', '150/min', '--abort-on', 'failed:50%:3', '--wait', '--json']);
  assert.is(run.code, 1, 'not succeeded: exit 1');
  const w = JSON.parse(run.out) as ApiWpk;
  assert.is(w.state, 'aborted');
  const checked = validators.apiWpk(w);
  assert.ok(checked.ok, `the answer matches schemas/json/api-wpk.json: ${checked.ok ? '' : checked.errors.join('; ')}`);
  assert.equal(w.aborted_by, { on: 'failed', min_executed: 3, threshold_pct: 50, executed: 3, matched: 2 });
  assert.equal(w.executions.map((e) => `${e.node_id}:${e.state}`), ['fw-1:succeeded', 'fw-2:failed', 'fw-3:failed', 'fw-4:skipped', 'fw-5:skipped', 'fw-6:skipped']);
  assert.equal(ran, ['fw-1', 'fw-2', 'fw-3'], 'the agents behind the abort never ran it');
  const gaps = w.executions.slice(1, 3).map((e, i) => e.dispatched_at - w.executions[i]!.dispatched_at);
  for (const gap of gaps) assert.ok(gap >= 390 && gap < 700, `dispatches ~400 ms apart at 150/min, got ${gaps.join(', ')} ms`);
  assert.match(run.err, /queued, rollout at 150\/min/, '--wait said what is queued');
  const metrics = parseExposition(await (await fetch(`${fed.api.url}/metrics`)).text());
  assert.is(sample(metrics, 'edgefed_wpks_finished_total', { state: 'aborted' }), 1);
  assert.is(sample(metrics, 'edgefed_wpks', { state: 'aborted' }), 1);
}, { timeoutMs: 20_000 }));

test('continuous: agents started later run it once, a restarted one not again; at the deadline it succeeds', bounded(async (scope) => {
  const fed = await inProcess(scope);
  const ran: Ran = [];
  const [first] = await fleet(scope, ['c-1', 'c-2'], inMemory(fed), ran);
  await allActive(fed, ['c-1', 'c-2']);
  const created = await api<ApiWpk>(fed, '/federation/wpk', post({ capability: 'firmware', action: 'update', mode: 'all', continuous: true, deadline: Date.now() + 3000 }));
  assert.is(created.status, 201);
  const id = created.body.wpk_id;
  const succeeded = () => fed.hub.wpks.get(id)?.executions.filter((e) => e.state === 'succeeded').length;
  await waitFor(() => succeeded() === 2, { label: 'the first two ran it' });
  await fleet(scope, ['c-3'], inMemory(fed), ran);
  await waitFor(() => succeeded() === 3, { label: 'the newcomer ran it' });
  await first!.stop();
  await fleet(scope, ['c-1'], inMemory(fed), ran); // a new boot of a node that ran it
  await waitFor(() => fed.hub.node('c-1')?.status === 'active', { label: 'c-1 back' });
  const w = await waitFor(() => { const r = fed.hub.wpks.get(id); return r?.state === 'succeeded' ? r : undefined; }, { label: `succeeded at the deadline: ${JSON.stringify(fed.hub.wpks.get(id))}`, timeoutMs: 5000 });
  assert.equal(ran.sort(), ['c-1', 'c-2', 'c-3'], 'each node once');
  assert.equal(w.summary, { succeeded: 3 });
}, { timeoutMs: 15_000 }));

test('scheduled: trigger --start-at holds it "scheduled", then the agent runs it', bounded(async (scope) => {
  const fed = await inProcess(scope);
  const ran: Ran = [];
  await fleet(scope, ['s-1'], inMemory(fed), ran);
  await allActive(fed, ['s-1']);
  const t0 = Date.now();
  const run = await cli(scope, ['trigger', '--hub', fed.api.url, '--capability', 'firmware', '--action', 'update', '--start-at', '1500ms', '--wait']);
  assert.is(run.code, 0, run.err);
  assert.match(run.err, /: scheduled; starts at \d\d:\d\d/, run.err);
  const w = fed.hub.wpks.list()[0]!;
  assert.ok(w.executions[0]!.dispatched_at >= t0 + 1400, 'nothing went out before start_at');
  assert.equal(ran, ['s-1']);
}, { timeoutMs: 15_000 }));

test('a rollout survives kill -9 of the hub process: the next hub goes on at the pace, no node runs twice or is skipped', bounded(async (scope) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-deploy-e2e-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const hub1 = await spawnHub(['--data-dir', dir]);
  scope.defer(() => hub1.child.kill('SIGKILL'));
  const ids = ['r-1', 'r-2', 'r-3', 'r-4'];
  const ran: Ran = [];
  await fleet(scope, ids, { brokerUrl: hub1.mqttUrl }, ran);
  const nodes = async (url: string) => ((await (await fetch(`${url}/federation/nodes`)).json()) as { nodes: Array<{ node_id: string; status: string }> }).nodes;
  await waitFor(async () => (await nodes(hub1.httpUrl)).filter((n) => n.status === 'active').length === 4, { label: 'fleet active', timeoutMs: 5000 });
  const res = await fetch(`${hub1.httpUrl}/federation/wpk`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'firmware', action: 'update', mode: 'all', rollout: { max_per_minute: 40 } }) });
  const id = ((await res.json()) as ApiWpk).wpk_id;
  await waitFor(() => ran.length === 2, { label: 'two dispatched (1.5 s apart)', timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 500)); // well inside the next 1.5 s slot: its writes are done
  await kill9(hub1);
  const hub2 = await spawnHub(['--data-dir', dir, '--mqtt-port', new URL(hub1.mqttUrl).port]);
  scope.defer(() => stopGracefully(hub2).catch(() => hub2.child.kill('SIGKILL')));
  const final = await waitFor(async () => {
    const w = (await (await fetch(`${hub2.httpUrl}/federation/wpk/${id}`)).json()) as ApiWpk;
    return w.state === 'succeeded' ? w : undefined;
  }, { label: 'rollout done on the second hub', timeoutMs: 10_000, intervalMs: 100 });
  assert.equal(ran.slice().sort(), ids, 'every node ran it exactly once');
  assert.equal(final.executions.map((e) => `${e.node_id}:${e.state}`), ids.map((n) => `${n}:succeeded`));
  // Which of the two goes first depends on which re-announced first: a node not back yet keeps its place, the next goes.
  const later = final.executions.slice(2).map((e) => e.dispatched_at).sort((a, b) => a - b);
  assert.ok(later[1]! - later[0]! >= 1200, `the second hub kept the pace: ${later[1]! - later[0]!} ms between its dispatches`);
}, { timeoutMs: 30_000 }));

test.run();
