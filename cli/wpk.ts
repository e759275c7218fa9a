/**
 * `edgefed wpk list|show|cancel`: work packages from the hub's HTTP API, as
 * tables or as the hub's records (`--json`). The renderers are shared with
 * `edgefed trigger --wait`.
 */
import type { ApiExecution, ApiWpk, ApiWpkList } from '../lib/api.js';
import { FINAL_WPK_STATES, WPK_STATES } from '../lib/states.js';
import { DEFAULT_WPK_LIST_LIMIT, MAX_WPK_LIST_LIMIT } from '../lib/limits.js';
import { CliError, commandFlags, int, str, type Flags, type FlagSpecs } from './args.js';
import { getJson, HUB_FLAGS, hubOf, postJson } from './hub-client.js';
import { abortText, rateText, rolloutText } from './rollout.js';
import { ago, table } from './table.js';


const LIST_SPECS: FlagSpecs = {
  ...HUB_FLAGS,
  json: { type: 'boolean', help: 'Print the hub\'s records as a JSON array' },
  state: { type: 'string', value: 'S', help: `Only work packages in this state (${WPK_STATES.join(', ')})` },
  capability: { type: 'string', value: 'C', help: 'Only work packages for this capability' },
  limit: { type: 'string', value: 'N', help: `At most N work packages, newest first (1-${MAX_WPK_LIST_LIMIT}; the hub answers ${DEFAULT_WPK_LIST_LIMIT} without it)` },
};
const ONE_SPECS: FlagSpecs = { ...HUB_FLAGS, json: { type: 'boolean', help: 'Print the hub\'s record as JSON' } };

// ---- rendering ----------------------------------------------------------

/** "30s", "10m", "2h": the largest unit that divides evenly, else milliseconds. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** "12s ago" for the past, "in 5m" for the future (deadlines). */
export function relative(epochMs: number | null, now = Date.now()): string {
  if (epochMs === null) return '-';
  if (epochMs <= now) return ago(epochMs, now);
  return `in ${ago(now, epochMs).replace(/ ago$/, '')}`;
}

/** One line of JSON, cut to `max` characters so a big result cannot wreck a table. */
export function oneLine(value: unknown, max = 60): string {
  const text = JSON.stringify(value) ?? '';
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Progress matters only while an execution runs; a finished one says so by its state. */
function percent(e: ApiExecution): string {
  return e.state !== 'running' || e.progress === null ? '' : ` ${Math.round(e.progress * 100)}%`;
}

function attemptText(w: ApiWpk): string {
  return w.mode === 'one' ? `${w.attempt}/${w.max_attempts}` : String(w.attempt);
}

/** Who runs it: the assignee (mode one), or how many nodes got it (mode all). */
function nodeText(w: ApiWpk): string {
  if (w.assignee !== null) return w.assignee;
  if (w.mode === 'all' && w.executions.length > 0) return `${new Set(w.executions.map((e) => e.node_id)).size} node(s)`;
  return '-';
}

/** Executions per state, counted from the executions themselves (always current, unlike a cached summary). */
/**
 * Mode `all` with nothing in flight but not over: it waits for nodes until
 * its deadline. Say so, and for whom, instead of a line that never changes.
 */
function waitingText(w: ApiWpk): string {
  if (FINAL_WPK_STATES.has(w.state)) return '';
  if (w.state === 'scheduled') return `; starts at ${hhmm(w.start_at ?? w.created_at)}`;
  const queued = w.executions.filter((e) => e.state === 'queued').length;
  if (queued > 0) return `; ${queued} queued, rollout at ${rateText(w)}`;
  if (w.continuous) return `; open for nodes that match later until ${hhmm(w.deadline)} (continuous)`;
  if (w.executions.some((e) => e.state === 'dispatched' || e.state === 'accepted' || e.state === 'running')) return '';
  const whom = w.executions.length === 0 ? 'a matching node' : w.include_offline ? 'matching nodes that are offline, stale or busy' : 'matching nodes that are stale or busy';
  return `; waiting for ${whom} until ${hhmm(w.deadline)} (its deadline)`;
}

function hhmm(epochMs: number): string {
  const at = new Date(epochMs);
  return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
}

function summaryText(w: ApiWpk): string {
  const counts = new Map<string, number>();
  for (const e of w.executions) counts.set(e.state, (counts.get(e.state) ?? 0) + 1);
  return counts.size > 0 ? [...counts].map(([state, n]) => `${state}=${n}`).join(' ') : '-';
}

export function wpkTable(wpks: ApiWpk[], now = Date.now()): string {
  const rows = wpks.map((w) => [
    w.wpk_id, w.state, w.capability, w.action, w.mode, attemptText(w), nodeText(w), ago(w.created_at, now).replace(/ ago$/, ''),
  ]);
  return table(['WPK_ID', 'STATE', 'CAPABILITY', 'ACTION', 'MODE', 'ATTEMPT', 'NODE', 'AGE'], rows);
}

export function executionsTable(executions: ApiExecution[], now = Date.now()): string {
  const rows = executions.map((e) => [
    e.node_id,
    String(e.attempt),
    `${e.state}${percent(e)}`,
    e.started_at === null ? '-' : ago(e.started_at, now),
    e.finished_at === null ? '-' : ago(e.finished_at, now),
    e.error ?? (e.result === null ? '-' : oneLine(e.result)),
  ]);
  return table(['NODE', 'ATTEMPT', 'STATE', 'STARTED', 'FINISHED', 'RESULT/ERROR'], rows);
}

/** `edgefed wpk show`: every field of the record, then its executions. */
export function wpkDetails(w: ApiWpk, now = Date.now()): string {
  const labels = w.labels === null ? '-' : Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-';
  const fields: Array<[string, string]> = [
    ['wpk_id', w.wpk_id],
    ['state', w.state],
    ['capability', w.capability],
    ['action', w.action],
    ['mode', w.mode],
    ['params', JSON.stringify(w.params)],
    ['nodes', w.nodes === null ? 'any' : w.nodes.join(',')],
    ['labels', labels],
    ['attempt', `${w.attempt} of ${w.max_attempts}`],
    ['assignee', w.assignee ?? '-'],
    ['timeout', formatDuration(w.timeout_ms)],
    ...(w.mode === 'all' ? deploymentFields(w) : []),
    ['created', relative(w.created_at, now)],
    ...(w.start_at === null ? [] : [['start', relative(w.start_at, now)] as [string, string]]),
    ['updated', relative(w.updated_at, now)],
    ['deadline', relative(w.deadline, now)],
    ['finished', relative(w.finished_at, now)],
    ['executions', summaryText(w)],
    ['result', w.result === null ? '-' : JSON.stringify(w.result)],
    ['error', w.error ?? '-'],
  ];
  const width = Math.max(...fields.map(([name]) => name.length)) + 2;
  const head = fields.map(([name, value]) => `${`${name}:`.padEnd(width)}${value}`).join('\n');
  const runs = w.executions.length === 0 ? 'No executions yet.' : executionsTable(w.executions, now);
  return `${head}\n\n${runs}`;
}

/** Mode all: how it reaches the fleet. */
function deploymentFields(w: ApiWpk): Array<[string, string]> {
  const fields: Array<[string, string]> = [['continuous', w.continuous ? 'yes' : 'no'], ['rollout', rolloutText(w)], ['abort on', abortText(w)]];
  if (w.aborted_by) fields.push(['aborted by', `${w.aborted_by.on} >= ${w.aborted_by.threshold_pct}% after ${w.aborted_by.min_executed}: ${w.aborted_by.matched} of ${w.aborted_by.executed}`]);
  return fields;
}

/** A one-line account of where a WPK stands; `trigger --wait` prints it whenever it changes. */
export function progressLine(w: ApiWpk): string {
  if (w.mode === 'all') return `${w.wpk_id}: ${w.state} (${summaryText(w)})${waitingText(w)}`;
  if (w.state === 'scheduled') return `${w.wpk_id}: scheduled${waitingText(w)}`;
  const current = w.executions.find((e) => e.attempt === w.attempt && e.node_id === w.assignee);
  const where = w.assignee === null ? '' : ` on ${w.assignee}, attempt ${w.attempt}/${w.max_attempts}`;
  return `${w.wpk_id}: ${w.state}${where}${current ? percent(current) : ''}`;
}

/** What `trigger --wait` prints on stdout once the WPK is over: its state, then its result or error. */
export function finalReport(w: ApiWpk, now = Date.now()): string {
  const lines = [progressLine(w)];
  if (w.result !== null) lines.push(`result: ${JSON.stringify(w.result)}`);
  if (w.error !== null) lines.push(`error: ${w.error}`);
  if (w.mode === 'all' && w.executions.length > 0) lines.push('', executionsTable(w.executions, now));
  return lines.join('\n');
}

export function isFinal(w: ApiWpk): boolean {
  return FINAL_WPK_STATES.has(w.state);
}

export function wpkPath(id: string, suffix = ''): string {
  return `federation/wpk/${encodeURIComponent(id)}${suffix}`;
}

// ---- subcommands --------------------------------------------------------

type Subcommand = (argv: string[], env: NodeJS.ProcessEnv) => Promise<number>;

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The single `<id>` argument of show and cancel. */
function onlyId(sub: string, positionals: string[]): string {
  const [id] = positionals; // commandFlags refused any further argument
  if (id === undefined) throw new CliError(`edgefed wpk ${sub}: the work package id is missing. Run "edgefed wpk ${sub} --help".`);
  return id;
}

export function listQuery(flags: Flags): string {
  const query = new URLSearchParams();
  const state = str(flags, 'state');
  if (state !== undefined) {
    if (!(WPK_STATES as readonly string[]).includes(state)) throw new CliError(`--state must be one of ${WPK_STATES.join(', ')}, got "${state}"`);
    query.set('state', state);
  }
  const capability = str(flags, 'capability');
  if (capability !== undefined) query.set('capability', capability);
  const limit = int(flags, 'limit', { min: 1, max: MAX_WPK_LIST_LIMIT });
  if (limit !== undefined) query.set('limit', String(limit));
  return query.toString();
}

const runList: Subcommand = async (argv, env) => {
  const parsed = commandFlags('wpk list', argv, LIST_SPECS, env, { usage: 'edgefed wpk list [options]', summary: 'Lists work packages, newest first.' });
  if (!parsed) return 0;
  const { flags } = parsed;
  const qs = listQuery(flags);
  const body = await getJson<ApiWpkList>(hubOf(flags), `federation/wpk${qs ? `?${qs}` : ''}`);
  if (flags.json) printJson(body.wpks);
  else process.stdout.write(body.wpks.length === 0 ? 'No work packages match.\n' : `${wpkTable(body.wpks)}\n${body.count} work package(s)\n`);
  return 0;
};

const runShow: Subcommand = async (argv, env) => {
  const parsed = commandFlags('wpk show', argv, ONE_SPECS, env, { usage: 'edgefed wpk show <wpk_id> [options]', summary: 'Shows one work package and every execution of it.' }, 1);
  if (!parsed) return 0;
  const { flags, positionals } = parsed;
  const record = await getJson<ApiWpk>(hubOf(flags), wpkPath(onlyId('show', positionals)));
  if (flags.json) printJson(record);
  else process.stdout.write(`${wpkDetails(record)}\n`);
  return 0;
};

const runCancel: Subcommand = async (argv, env) => {
  const parsed = commandFlags('wpk cancel', argv, ONE_SPECS, env, {
    usage: 'edgefed wpk cancel <wpk_id> [options]',
    summary: 'Cancels a work package that has not finished; nodes running it are told to stop.\nExit code 1 when it had already finished or does not exist.',
  }, 1);
  if (!parsed) return 0;
  const { flags, positionals } = parsed;
  const record = await postJson<ApiWpk>(hubOf(flags), wpkPath(onlyId('cancel', positionals), '/cancel'));
  if (flags.json) printJson(record);
  else process.stdout.write(`${record.wpk_id} ${record.state}\n`);
  return 0;
};

const SUBCOMMANDS: Record<string, { summary: string; run: Subcommand }> = {
  list: { summary: 'List work packages (table, or --json)', run: runList },
  show: { summary: 'Show one work package and its executions', run: runShow },
  cancel: { summary: 'Cancel a work package that has not finished', run: runCancel },
};

function usage(): string {
  const rows = Object.entries(SUBCOMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Usage: edgefed wpk <list|show|cancel> [options]\n\nWork packages in the hub. Create them with "edgefed trigger".\n\nSubcommands:\n${rows.join('\n')}\n\nRun "edgefed wpk <subcommand> --help" for its options.\n`;
}

export async function runWpk(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS[name];
  if (!sub) throw new CliError(`edgefed wpk: unknown subcommand "${name}"; use list, show or cancel. Run "edgefed wpk --help".`);
  return sub.run(rest, env);
}
