/**
 * `edgefed simulate` as a user runs it (a child process over loopback TCP):
 * its nodes join the hub, and when it stops they are removed from the
 * registry unless `--keep`; a hub it cannot reach leaves them, with one line
 * that says how to remove them later.
 */
import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Federation } from '../server/federation.js';
import { CLI_ARGS } from './helpers/cli.js';
import { federation } from './helpers/federation.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';

async function hub(scope: Scope): Promise<Federation> {
  const fed = await federation({ mqttListen: true });
  scope.defer(() => fed.stop());
  return fed;
}

/** Runs simulate to its --duration; resolves with its exit code and stderr. */
function simulate(scope: Scope, args: string[]): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [...CLI_ARGS, 'simulate', '--nodes', '3', '--duration', '1500ms', '--auth', 'none', '--heartbeat-interval', '500ms', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  scope.defer(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  return withTimeout(new Promise((resolve) => child.once('close', (code) => resolve({ code, err }))), 20_000, `simulate ${args.join(' ')}`);
}

test('simulate removes its nodes from the hub when it stops; with --keep they stay, offline', bounded(async (scope) => {
  const fed = await hub(scope);
  const [gone, kept] = await Promise.all([
    simulate(scope, ['--broker', fed.mqttUrl!, '--hub', fed.api.url, '--prefix', 'tmp']),
    simulate(scope, ['--broker', fed.mqttUrl!, '--hub', fed.api.url, '--prefix', 'kept', '--keep']),
  ]);
  assert.is(gone.code, 0, gone.err);
  assert.match(gone.err, /simulate: removed 3 simulated node\(s\) from the hub \(--keep leaves them\)/);
  assert.equal(['tmp-0', 'tmp-1', 'tmp-2'].map((id) => fed.hubApi.node(id)), [undefined, undefined, undefined]);
  assert.is(kept.code, 0, kept.err);
  assert.not.match(kept.err, /removed/);
  assert.equal(['kept-0', 'kept-1', 'kept-2'].map((id) => fed.hubApi.node(id)?.status), ['offline', 'offline', 'offline']);
}, { timeoutMs: 30_000 }));

test('Ctrl-C (SIGINT), as the README stops it: the nodes are removed too', bounded(async (scope) => {
  const fed = await hub(scope);
  const child = spawn(process.execPath, [...CLI_ARGS, 'simulate', '--nodes', '2', '--auth', 'none', '--prefix', 'int', '--broker', fed.mqttUrl!, '--hub', fed.api.url], { stdio: ['ignore', 'ignore', 'pipe'] });
  scope.defer(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  await waitFor(() => fed.hubApi.node('int-1')?.status === 'active', { timeoutMs: 10_000, label: 'simulated nodes active' });
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
  child.kill('SIGINT');
  assert.is(await withTimeout(closed, 10_000, 'simulate exits'), 0, err);
  assert.match(err, /stopping 2 agents \(SIGINT\)/);
  assert.equal([fed.hubApi.node('int-0'), fed.hubApi.node('int-1')], [undefined, undefined]);
}, { timeoutMs: 30_000 }));

test('a hub it cannot reach: the nodes stay, and one line says how to remove them', bounded(async (scope) => {
  const fed = await hub(scope);
  const run = await simulate(scope, ['--broker', fed.mqttUrl!, '--hub', 'http://127.0.0.1:9', '--prefix', 'lost']);
  assert.is(run.code, 0, run.err);
  assert.match(run.err, /could not remove the simulated nodes \(cannot reach the hub at http:\/\/127\.0\.0\.1:9 .*\); 3 stay in the registry\. Remove them later with "edgefed nodes prune --offline-for 0s --label sim=true"/);
  assert.is(fed.hubApi.node('lost-0')?.status, 'offline');
}, { timeoutMs: 30_000 }));

test.run();
