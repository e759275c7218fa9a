/**
 * `edgefed trigger`: creates a work package through the hub's HTTP API and,
 * with `--wait`, follows it to its end. Flags are checked here (exit 2, in
 * flag terms) before anything is sent; the hub checks the rest (exit 1 with
 * its reasons).
 */
import type { HttpWpkRequest } from '../lib/wire.js';
import { parseDuration } from '../lib/duration.js';
import { isValidId } from '../lib/ids.js';
import { MAX_ATTEMPTS } from '../lib/limits.js';
import type { ApiWpk } from '../lib/api.js';
import { CliError, envName, helpText, int, labels, list, parseFlags, str, type Flags, type FlagSpecs } from './args.js';
import { getJson, HUB_FLAGS, hubOf, postJson, type HubTarget } from './hub-client.js';
import { addRolloutFields, ROLLOUT_FLAGS } from './rollout.js';
import { finalReport, isFinal, progressLine, wpkPath } from './wpk.js';

export const TRIGGER_FLAGS: FlagSpecs = {
  capability: { type: 'string', value: 'C', help: 'Capability the work needs, e.g. monitoring (required)' },
  action: { type: 'string', value: 'A', help: 'Action to run, e.g. collect-metrics (required)' },
  params: { type: 'string', value: 'JSON', help: 'Parameters of the action, a JSON object, e.g. \'{"window":"5m"}\'' },
  mode: { type: 'string', value: 'one|all', help: 'one: a single node runs it; all: every matching node does (hub default: one)' },
  nodes: { type: 'string', multiple: true, value: 'A,B', help: 'Only these nodes may run it' },
  label: { type: 'string', multiple: true, value: 'K=V', help: 'Only nodes with this label may run it (repeatable)' },
  timeout: { type: 'string', value: 'DURATION', help: 'How long one attempt may run, e.g. 30s' },
  deadline: { type: 'string', value: 'DURATION', help: 'No attempt starts after now (or --start-at) + this, e.g. 10m (hub default: 1h)' },
  'max-attempts': { type: 'string', value: 'N', help: `Attempts before it fails (mode one), 1-${MAX_ATTEMPTS}` },
  'include-offline': { type: 'boolean', help: 'Mode all: also wait (until the deadline) for matching nodes that are offline now; without it they are skipped' },
  ...ROLLOUT_FLAGS,
  wait: { type: 'boolean', help: 'Follow it to its end: changes on stderr, final state and result on stdout' },
  json: { type: 'boolean', help: 'Print the hub\'s record as JSON (with --wait: only the final one)' },
  ...HUB_FLAGS,
};

const USAGE = 'edgefed trigger --capability C --action A [--params JSON] [options]';
const SUMMARY = `Creates a work package in the hub, which dispatches it to nodes with the capability.
Without --wait it prints the work package id and state; follow it with "edgefed wpk show <id>".

Exit code: 0 when created (with --wait: when it ended "succeeded"); 1 when it ended in
any other state, the hub refused it or could not be reached; 2 on a usage error.`;
const HINT = 'Run "edgefed trigger --help".';

/** How often `--wait` asks the hub. */
export const POLL_INTERVAL_MS = 200;
/** `--wait` gives up this long after the last attempt could have ended (deadline + timeout). */
export const WAIT_GRACE_MS = 30_000;

function usageError(message: string): CliError {
  return new CliError(`edgefed trigger: ${message}. ${HINT}`);
}

function requiredId(flags: Flags, name: string): string {
  const value = str(flags, name);
  if (value === undefined) throw usageError(`--${name} is required (or set ${envName(name)})`);
  if (!isValidId(value)) throw usageError(`--${name} "${value}" is not a valid id (1-64 chars of letters, digits, . _ -, starting with a letter or digit)`);
  return value;
}

function durationMs(flags: Flags, name: string): number | undefined {
  const text = str(flags, name);
  if (text === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw usageError(`--${name} must be a duration such as 500ms, 30s, 10m or 2h, got "${text}"`);
  }
  if (ms <= 0) throw usageError(`--${name} must be longer than 0, got "${text}"`);
  return ms;
}

function paramsObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw usageError(`--params is not valid JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw usageError(`--params must be a JSON object such as '{"window":"5m"}', got ${text}`);
  return value as Record<string, unknown>;
}

/** The POST /federation/wpk body the flags describe; `now` anchors `--deadline`. */
export function buildRequest(flags: Flags, now = Date.now()): HttpWpkRequest {
  const request: HttpWpkRequest = { capability: requiredId(flags, 'capability'), action: requiredId(flags, 'action') };
  const params = paramsObject(str(flags, 'params'));
  if (params !== undefined) request.params = params;
  const mode = str(flags, 'mode');
  if (mode !== undefined) {
    if (mode !== 'one' && mode !== 'all') throw usageError(`--mode must be one or all, got "${mode}"`);
    request.mode = mode;
  }
  const nodes = list(flags, 'nodes');
  const badNode = nodes.find((n) => !isValidId(n));
  if (badNode !== undefined) throw usageError(`--nodes: "${badNode}" is not a valid node id`);
  if (nodes.length > 0) request.nodes = [...new Set(nodes)];
  const selector = labels(flags);
  if (Object.keys(selector).length > 0) request.labels = selector;
  const timeout = durationMs(flags, 'timeout');
  if (timeout !== undefined) request.timeout_ms = timeout;
  const attempts = int(flags, 'max-attempts', { min: 1, max: MAX_ATTEMPTS });
  if (attempts !== undefined) request.max_attempts = attempts;
  if (flags['include-offline'] === true) request.include_offline = true;
  addRolloutFields(request, flags, now);
  // A scheduled WPK's window starts at its start.
  const deadline = durationMs(flags, 'deadline');
  if (deadline !== undefined) request.deadline = Math.max(now, request.start_at ?? now) + deadline;
  return request;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls the WPK until it is in a final state, calling `onChange` with each
 * new progress line before that. Bounded: past its deadline plus one attempt's timeout
 * the hub must have ended it, so a WPK still open then means a hub problem.
 */
export async function waitUntilFinal(hub: HubTarget, first: ApiWpk, onChange: (line: string) => void, intervalMs = POLL_INTERVAL_MS): Promise<ApiWpk> {
  const giveUpAt = first.deadline + first.timeout_ms + WAIT_GRACE_MS;
  let record = first;
  let shown = '';
  for (;;) {
    // The final state is the caller's to print (stdout), not a progress line.
    if (isFinal(record)) return record;
    const line = progressLine(record);
    if (line !== shown) onChange((shown = line));
    if (Date.now() > giveUpAt) {
      throw new CliError(`gave up waiting: ${record.wpk_id} is still ${record.state} past its deadline. See "edgefed wpk show ${record.wpk_id}".`, 1);
    }
    await sleep(intervalMs);
    record = await getJson<ApiWpk>(hub, wpkPath(record.wpk_id));
  }
}

export async function runTrigger(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { flags, positionals } = parseFlags('trigger', argv, TRIGGER_FLAGS, env);
  if (flags.help) {
    process.stdout.write(helpText(USAGE, SUMMARY, TRIGGER_FLAGS));
    return 0;
  }
  if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]}"`);
  const request = buildRequest(flags);
  const hub = hubOf(flags);
  const created = await postJson<ApiWpk>(hub, 'federation/wpk', request);
  if (!flags.wait) {
    process.stdout.write(flags.json ? `${JSON.stringify(created, null, 2)}\n` : `${created.wpk_id} ${created.state}\n`);
    return 0;
  }
  const final = await waitUntilFinal(hub, created, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(flags.json ? `${JSON.stringify(final, null, 2)}\n` : `${finalReport(final)}\n`);
  return final.state === 'succeeded' ? 0 : 1;
}
