/**
 * The deployment flags of `edgefed trigger` (--rate, --ramp, --abort-on,
 * --start-at, --rollout-order, --continuous) and how `wpk show` and
 * `trigger --wait` put a rollout into words, in-process.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CliError, parseFlags } from '../cli/args.js';
import { buildRequest, TRIGGER_FLAGS } from '../cli/trigger.js';
import { progressLine, wpkDetails } from '../cli/wpk.js';
import type { ApiExecution, ApiWpk } from '../lib/api.js';

const NOW = Date.UTC(2026, 11, 5, 10, 0, 0);
const request = (argv: string[]) => buildRequest(parseFlags('trigger', ['--capability', 'm', '--action', 'update', '--mode', 'all', ...argv], TRIGGER_FLAGS, {}).flags, NOW);

const test = suite('edgefed trigger: deployment flags');

test('--rate, --ramp, --rollout-order, --abort-on, --continuous and --start-at land in the request', () => {
  assert.equal(request(['--rate', '60/min']).rollout, { max_per_minute: 60 });
  assert.equal(request(['--rate', '2/s']).rollout, { max_per_minute: 120 });
  assert.equal(request(['--ramp', '10/min,x2,every 20', '--rate', '500/min', '--rollout-order', 'ring']).rollout,
    { base_per_minute: 10, factor: 2, every_succeeded: 20, max_per_minute: 500, order_label: 'ring' });
  assert.equal(request(['--abort-on', 'failed:10%:20', '--abort-on', 'any:50%:4']).abort,
    [{ on: 'failed', threshold_pct: 10, min_executed: 20 }, { on: 'any', threshold_pct: 50, min_executed: 4 }]);
  assert.is(request(['--continuous']).continuous, true);
  const scheduled = request(['--start-at', '2h', '--deadline', '30m']);
  assert.equal([scheduled.start_at, scheduled.deadline], [NOW + 7_200_000, NOW + 7_200_000 + 1_800_000], 'the deadline counts from the start');
  assert.is(request(['--start-at', '2026-12-05T22:00:00Z']).start_at, Date.UTC(2026, 11, 5, 22));
});

test('bad deployment flags are usage errors that show the expected form', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--rate', '60'], /--rate: "60" is not a rate; use e.g. 60\/min or 2\/s/],
    [['--rate', '0/min'], /it must be 1 to 60000 a minute/],
    [['--ramp', '10/min,2,every 20'], /--ramp: .* use RATE,xFACTOR,every N/],
    [['--ramp', '10/min,x1,every 5'], /the factor must be above 1/],
    [['--abort-on', 'failed:10:20'], /--abort-on: "failed:10:20" is not a criterion; use ON:PERCENT%:MIN_EXECUTED/],
    [['--abort-on', 'lost:10%:2'], /ON one of failed, rejected, timed_out, any/],
    [['--start-at', 'tomorrow'], /--start-at: "tomorrow" is neither a duration/],
    [['--rollout-order', 'ring'], /--rollout-order orders a rollout: give --rate or --ramp too/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => request(argv), (err: unknown) => err instanceof CliError && err.exitCode === 2 && message.test(err.message), argv.join(' '));
  }
});

function execution(node: string, state: ApiExecution['state']): ApiExecution {
  return { node_id: node, attempt: 1, state, boot_id: 'b', progress: null, result: null, error: null, dispatched_at: NOW, started_at: null, finished_at: null, updated_at: NOW };
}

function rollout(extra: Partial<ApiWpk> = {}): ApiWpk {
  return {
    wpk_id: 'wpk_r', state: 'running', capability: 'm', action: 'update', mode: 'all', params: {}, nodes: null, labels: null,
    include_offline: false, continuous: false, start_at: null, rollout: { base_per_minute: 10, factor: 2, every_succeeded: 2, order_label: 'ring' },
    abort: [{ on: 'failed', threshold_pct: 10, min_executed: 20 }], aborted_by: null, next_dispatch_at: NOW + 3000, rollout_rate_per_minute: 20,
    timeout_ms: 60_000, max_attempts: 1, attempt: 1, assignee: null, created_at: NOW, updated_at: NOW, deadline: NOW + 3_600_000,
    finished_at: null, result: null, error: null, summary: {},
    executions: [execution('a', 'succeeded'), execution('b', 'succeeded'), execution('c', 'running'), execution('d', 'queued'), execution('e', 'queued')],
    ...extra,
  };
}

test('wpk show and trigger --wait say how a rollout goes: its pace, order, criteria, what is queued', () => {
  const details = wpkDetails(rollout(), NOW);
  assert.match(details, /rollout: +ramp from 10\/min, x2 every 2 succeeded \(now 20\/min\), in order of label ring, then node id/);
  assert.match(details, /abort on: +failed >= 10% after 20/);
  assert.match(progressLine(rollout()), /^wpk_r: running \(succeeded=2 running=1 queued=2\); 2 queued, rollout at 20\/min$/);
  const aborted = rollout({ state: 'aborted', aborted_by: { on: 'failed', threshold_pct: 10, min_executed: 20, executed: 20, matched: 3 } });
  assert.match(wpkDetails(aborted, NOW), /aborted by: +failed >= 10% after 20: 3 of 20/);
  const scheduled = rollout({ state: 'scheduled', start_at: NOW + 7_200_000, executions: [] });
  assert.match(progressLine(scheduled), /^wpk_r: scheduled \(-\); starts at \d\d:\d\d$/);
  assert.match(wpkDetails(scheduled, NOW), /start: +in 2h/);
  assert.match(progressLine(rollout({ rollout: null, continuous: true, executions: [execution('a', 'succeeded')] })), /; open for nodes that match later until \d\d:\d\d \(continuous\)$/);
});

test.run();
