/**
 * `edgefed trigger` and `edgefed wpk`: flag handling and rendering in-process,
 * then the real CLI (a child process through tsx, as test/helpers/process.ts
 * runs `edgefed start`) against a federation and a real agent in this process.
 */
import { spawn } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent } from '../agent/index.js';
import { CliError, parseFlags } from '../cli/args.js';
import { buildRequest, TRIGGER_FLAGS } from '../cli/trigger.js';
import { executionsTable, finalReport, formatDuration, progressLine, relative, wpkDetails, wpkTable } from '../cli/wpk.js';
import type { Federation } from '../server/federation.js';
import type { WpkRecord } from '../hub/wpk/types.js';
import type { ApiWpk } from '../lib/api.js';
import { silentLogger } from '../lib/log.js';
import { federation } from './helpers/federation.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';
import { CLI_ARGS } from './helpers/cli.js';

const NOW = 1_800_000_000_000;

function request(argv: string[], env: NodeJS.ProcessEnv = {}) {
  return buildRequest(parseFlags('trigger', argv, TRIGGER_FLAGS, env).flags, NOW);
}

function record(extra: Partial<ApiWpk> = {}): ApiWpk {
  return {
    wpk_id: 'wpk_abc', state: 'running', capability: 'monitoring', action: 'collect-metrics', mode: 'one',
    params: { window: '5m' }, nodes: null, labels: { site: 'berlin' }, timeout_ms: 30_000, max_attempts: 3, include_offline: false,
    continuous: false, start_at: null, rollout: null, abort: [], aborted_by: null, next_dispatch_at: null, rollout_rate_per_minute: null,
    attempt: 2, assignee: 'edge-002', created_at: NOW - 12_000, updated_at: NOW - 1000, deadline: NOW + 600_000,
    finished_at: null, result: null, error: null, summary: {},
    executions: [
      { node_id: 'edge-001', attempt: 1, state: 'lost', boot_id: 'b1', progress: null, result: null, error: 'node went offline', dispatched_at: NOW - 12_000, started_at: NOW - 11_000, finished_at: NOW - 5000, updated_at: NOW - 5000 },
      { node_id: 'edge-002', attempt: 2, state: 'running', boot_id: 'b2', progress: 0.4, result: null, error: null, dispatched_at: NOW - 5000, started_at: NOW - 4000, finished_at: null, updated_at: NOW - 1000 },
    ],
    ...extra,
  };
}

// ---- flags --------------------------------------------------------------

const flags = suite('edgefed trigger: flags');

flags('every flag lands in the POST /federation/wpk body; durations become timeout_ms and an absolute deadline', () => {
  const body = request(['--capability', 'monitoring', '--action', 'collect-metrics', '--params', '{"window":"5m"}', '--mode', 'all',
    '--nodes', 'a,b', '--nodes', 'b,c', '--label', 'site=berlin', '--label', 'rack=3', '--timeout', '30s', '--deadline', '10m', '--max-attempts', '3']);
  assert.equal(body, {
    capability: 'monitoring', action: 'collect-metrics', params: { window: '5m' }, mode: 'all', nodes: ['a', 'b', 'c'],
    labels: { site: 'berlin', rack: '3' }, timeout_ms: 30_000, deadline: NOW + 600_000, max_attempts: 3,
  });
});

flags('only capability and action are required; nothing else is sent unless given', () => {
  assert.equal(request(['--capability', 'monitoring', '--action', 'echo']), { capability: 'monitoring', action: 'echo' });
});

flags('EDGEFED_* variables fill flags not given; flags win', () => {
  const body = request(['--action', 'echo'], { EDGEFED_CAPABILITY: 'gpu', EDGEFED_ACTION: 'sleep', EDGEFED_PARAMS: '{"ms":5}', EDGEFED_LABEL: 'site=paris,rack=1', EDGEFED_TIMEOUT: '2s' });
  assert.equal(body, { capability: 'gpu', action: 'echo', params: { ms: 5 }, labels: { site: 'paris', rack: '1' }, timeout_ms: 2000 });
});

flags('bad values are usage errors (exit 2) in flag terms, before anything is sent', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--action', 'echo'], /--capability is required \(or set EDGEFED_CAPABILITY\)/],
    [['--capability', 'monitoring'], /--action is required/],
    [['--capability', 'a/b', '--action', 'echo'], /--capability "a\/b" is not a valid id/],
    [['--capability', 'm', '--action', 'echo', '--params', '{"window":'], /--params is not valid JSON \(.*JSON.*\)/],
    [['--capability', 'm', '--action', 'echo', '--params', '[1,2]'], /--params must be a JSON object/],
    [['--capability', 'm', '--action', 'echo', '--mode', 'some'], /--mode must be one or all, got "some"/],
    [['--capability', 'm', '--action', 'echo', '--nodes', 'ok,bad node'], /--nodes: "bad node" is not a valid node id/],
    [['--capability', 'm', '--action', 'echo', '--label', 'berlin'], /--label takes name=value/],
    [['--capability', 'm', '--action', 'echo', '--timeout', 'soon'], /--timeout must be a duration/],
    [['--capability', 'm', '--action', 'echo', '--deadline', '0s'], /--deadline must be longer than 0/],
    [['--capability', 'm', '--action', 'echo', '--max-attempts', '0'], /--max-attempts must be a whole number from 1 to 100/],
  ];
  for (const [argv, pattern] of cases) {
    try {
      request(argv);
      assert.unreachable(argv.join(' '));
    } catch (err) {
      assert.instance(err, CliError, argv.join(' '));
      assert.is((err as CliError).exitCode, 2, argv.join(' '));
      assert.match((err as CliError).message, pattern);
    }
  }
});

// ---- rendering ----------------------------------------------------------

const render = suite('edgefed wpk: rendering');

render('list table: one row per WPK with attempt/max, the assignee and the age', () => {
  const out = wpkTable([record(), record({ wpk_id: 'wpk_all', mode: 'all', state: 'succeeded', attempt: 1, assignee: null })], NOW);
  const [head, one, all] = out.split('\n');
  assert.match(head!, /^WPK_ID\s+STATE\s+CAPABILITY\s+ACTION\s+MODE\s+ATTEMPT\s+NODE\s+AGE$/);
  assert.match(one!, /^wpk_abc\s+running\s+monitoring\s+collect-metrics\s+one\s+2\/3\s+edge-002\s+12s$/);
  assert.match(all!, /^wpk_all\s+succeeded\s+.*\sall\s+1\s+2 node\(s\)\s+12s$/);
});

render('show: the fields, then every execution with progress, times and result or error', () => {
  const out = wpkDetails(record({ result: null }), NOW);
  for (const line of [/^wpk_id:\s+wpk_abc$/m, /^params:\s+\{"window":"5m"\}$/m, /^nodes:\s+any$/m, /^labels:\s+site=berlin$/m,
    /^attempt:\s+2 of 3$/m, /^timeout:\s+30s$/m, /^created:\s+12s ago$/m, /^deadline:\s+in 10m$/m, /^executions:\s+lost=1 running=1$/m,
    /^NODE\s+ATTEMPT\s+STATE\s+STARTED\s+FINISHED\s+RESULT\/ERROR$/m, /^edge-001\s+1\s+lost\s+11s ago\s+5s ago\s+node went offline$/m,
    /^edge-002\s+2\s+running 40%\s+4s ago\s+-\s+-$/m]) {
    assert.match(out, line);
  }
  assert.match(wpkDetails(record({ executions: [] }), NOW), /No executions yet\.$/);
});

render('results are cut to one short line in tables, whole in the final report', () => {
  const big = { samples: Array.from({ length: 50 }, (_, i) => i) };
  const done = record({ state: 'succeeded', result: big, executions: [{ ...record().executions[1]!, state: 'succeeded', progress: 1, result: big }] });
  const row = executionsTable(done.executions, NOW).split('\n')[1]!;
  assert.ok(row.endsWith('…') && row.length < 120, row);
  assert.is(finalReport(done, NOW).split('\n')[1], `result: ${JSON.stringify(big)}`);
});

render('progress lines name the state, node, attempt and progress; mode all counts executions', () => {
  assert.is(progressLine(record()), 'wpk_abc: running on edge-002, attempt 2/3 40%');
  assert.is(progressLine(record({ state: 'pending', attempt: 0, assignee: null, executions: [] })), 'wpk_abc: pending');
  const run = record().executions[1]!;
  const all = record({ mode: 'all', assignee: null, executions: [run, { ...run, node_id: 'edge-003', state: 'succeeded' }, { ...run, node_id: 'edge-004' }] });
  assert.is(progressLine(all), 'wpk_abc: running (running=2 succeeded=1)');
  const done = { ...run, state: 'succeeded' as const };
  const waiting = record({ mode: 'all', assignee: null, include_offline: true, deadline: new Date(2026, 11, 5, 12, 40).getTime(), executions: [done] });
  assert.is(progressLine(waiting), 'wpk_abc: running (succeeded=1); waiting for matching nodes that are offline, stale or busy until 12:40 (its deadline)', 'what an open mode-all WPK waits for');
  assert.is(finalReport(record({ state: 'failed', error: 'boom' }), NOW).split('\n')[1], 'error: boom');
});

render('durations and relative times', () => {
  assert.equal([formatDuration(30_000), formatDuration(600_000), formatDuration(7_200_000), formatDuration(1500)], ['30s', '10m', '2h', '1500ms']);
  assert.equal([relative(NOW - 90_000, NOW), relative(NOW + 90_000, NOW), relative(null, NOW)], ['1m ago', 'in 1m', '-']);
});

// ---- the real CLI against a federation ------------------------------------

interface CliRun { code: number | null; out: string; err: string }

/**
 * Runs `edgefed <args>` in a child process; the federation in this process keeps serving meanwhile.
 * `live.err` follows its stderr as it comes, for a test that acts on a progress line.
 */
function cli(scope: Scope, args: string[], env: NodeJS.ProcessEnv = {}, live: { err: string } = { err: '' }): Promise<CliRun> {
  // A developer's own EDGEFED_* settings must not leak into the command under test.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EDGEFED_')));
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  scope.defer(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); live.err = err; });
  const done = new Promise<CliRun>((resolve) => child.once('close', (code) => resolve({ code, out, err })));
  return withTimeout(done, 10_000, `edgefed ${args.join(' ')}`);
}

async function startFederation(scope: Scope): Promise<Federation> {
  const fed = await federation();
  scope.defer(() => fed.stop());
  return fed;
}

const real = suite('edgefed trigger/wpk: real CLI against a hub');

real('trigger --wait --json: an echo run by a real agent ends succeeded with its result, exit 0', bounded(async (scope) => {
  const fed = await startFederation(scope);
  const agent = await startAgent({
    nodeId: 'echo-node', capabilities: ['basic-actions'], connect: (opts) => fed.broker!.connectInMemory(opts),
    heartbeatIntervalMs: 1000, logger: silentLogger,
  });
  scope.defer(() => agent.stop());
  await waitFor(() => fed.hub.node('echo-node')?.status === 'active', { label: 'agent registered', timeoutMs: 3000 });

  const run = await cli(scope, ['trigger', '--hub', fed.api.url, '--capability', 'basic-actions', '--action', 'echo',
    '--params', '{"greeting":"hello-edge"}', '--timeout', '3s', '--deadline', '4s', '--wait', '--json']);
  assert.is(run.code, 0, run.err);
  const final = JSON.parse(run.out) as WpkRecord;
  assert.is(final.state, 'succeeded');
  assert.is(final.action, 'echo');
  assert.is(final.assignee, 'echo-node');
  assert.match(JSON.stringify(final.result), /hello-edge/, 'the echo carries the params back');
  assert.equal(final.executions.map((e) => [e.node_id, e.state]), [['echo-node', 'succeeded']]);
  assert.equal(fed.hub.wpks.get(final.wpk_id)?.state, 'succeeded', 'stdout is the hub\'s record');
}, { timeoutMs: 15_000 }));

real('trigger prints the id and state; wpk list/show find it; cancel exits 0, then 1 with the 409', bounded(async (scope) => {
  const fed = await startFederation(scope);
  const hub = ['--hub', fed.api.url];
  const created = await cli(scope, ['trigger', ...hub, '--capability', 'nobody-has-it', '--action', 'noop', '--max-attempts', '2']);
  assert.is(created.code, 0, created.err);
  const [id, state] = created.out.trim().split(' ');
  assert.ok(id && fed.hub.wpks.get(id), `"${created.out}" starts with the id of a WPK in the hub`);
  assert.is(state, fed.hub.wpks.get(id)!.state);

  const listed = await cli(scope, ['wpk', 'list', '--capability', 'nobody-has-it'], { EDGEFED_HUB: fed.api.url });
  assert.is(listed.code, 0, listed.err);
  assert.match(listed.out, new RegExp(`^${id}\\s+${state}\\s+nobody-has-it\\s+noop\\s+one\\s+0/2\\s+-\\s+\\d+s$`, 'm'));
  assert.match(listed.out, /1 work package\(s\)\n$/);

  const shown = await cli(scope, ['wpk', 'show', id, ...hub]);
  assert.is(shown.code, 0, shown.err);
  assert.match(shown.out, new RegExp(`^wpk_id:\\s+${id}$`, 'm'));
  assert.match(shown.out, /^attempt:\s+0 of 2$/m);

  const canceled = await cli(scope, ['wpk', 'cancel', id, '--json', ...hub]);
  assert.is(canceled.code, 0, canceled.err);
  assert.is((JSON.parse(canceled.out) as WpkRecord).state, 'canceled');
  const again = await cli(scope, ['wpk', 'cancel', id, ...hub]);
  assert.is(again.code, 1);
  assert.match(again.err, /^edgefed wpk: hub answered 409: /);
  assert.is(again.out, '');

  const missing = await cli(scope, ['wpk', 'show', 'wpk_nope', ...hub]);
  assert.is(missing.code, 1);
  assert.match(missing.err, /hub answered 404: .*wpk_nope/);
}, { timeoutMs: 20_000 }));

real('trigger --wait exits 1 when the work package does not succeed (canceled while it waits for a node)', bounded(async (scope) => {
  const fed = await startFederation(scope);
  const live = { err: '' };
  const running = cli(scope, ['trigger', '--hub', fed.api.url, '--capability', 'nobody-has-it', '--action', 'noop', '--wait'], {}, live);
  // Any end but succeeded will do (expiry at the deadline is wpk-engine's): cancel it once the CLI waits on it.
  await waitFor(() => /: pending/.test(live.err), { timeoutMs: 10_000, label: 'a progress line on stderr' });
  const [w] = fed.hub.wpks.list({ capability: 'nobody-has-it' });
  await fed.hub.wpks.cancel(w!.wpk_id);
  const run = await running;
  assert.is(run.code, 1, run.err);
  assert.match(run.out, new RegExp(`^${w!.wpk_id}: canceled`));
  assert.match(run.err, new RegExp(`^${w!.wpk_id}: pending$`, 'm'), 'progress lines on stderr');
}, { timeoutMs: 15_000 }));

real('usage errors exit 2 and hub refusals exit 1, through bin/main', bounded(async (scope) => {
  const fed = await startFederation(scope);
  const bad = await cli(scope, ['trigger', '--hub', fed.api.url, '--capability', 'm', '--action', 'echo', '--params', '{oops']);
  assert.is(bad.code, 2);
  assert.match(bad.err, /--params is not valid JSON/);
  const refused = await cli(scope, ['trigger', '--hub', fed.api.url, '--capability', 'm', '--action', 'echo', '--timeout', '30d']);
  assert.is(refused.code, 1);
  assert.match(refused.err, /hub answered 422: .*timeout_ms/);
  assert.equal(fed.hub.wpks.list(), [], 'nothing was created');
}, { timeoutMs: 15_000 }));

flags.run();
render.run();
real.run();
