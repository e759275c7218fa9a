/**
 * `edgefed state show|set`: nodes' desired state through the hub's HTTP API
 * (issue 16). `set` sends one JSON merge patch per node, to the nodes named
 * or to every node matching `--capability`/`--label`, a few at a time, and
 * ends with a summary; a node that refuses (412, 404...) does not stop the others.
 */
import type { ApiNodeState } from '../lib/api.js';
import { parseObject } from '../lib/json.js';
import { CliError, commandFlags, int, list, str, type Flags, type FlagSpecs } from './args.js';
import { getJson, HUB_FLAGS, hubOf, listAllNodes, patchJson, type HubTarget } from './hub-client.js';
import { ago } from './table.js';

const SHOW_SPECS: FlagSpecs = { ...HUB_FLAGS, json: { type: 'boolean', help: 'Print the hub\'s answer as JSON' } };
const SET_SPECS: FlagSpecs = {
  ...HUB_FLAGS,
  patch: { type: 'string', value: 'JSON', help: 'A JSON merge patch (RFC 7386): {"interval_s": 5, "debug": null} sets interval_s and removes debug (required)' },
  'if-version': { type: 'string', value: 'N', help: 'Change only a node whose desired state is at version N (else 412, nothing changed)' },
  capability: { type: 'string', value: 'C', help: 'Every node with this capability (instead of node ids)' },
  label: { type: 'string', multiple: true, value: 'K=V', help: 'Every node with this label (repeatable; with or instead of --capability)' },
  json: { type: 'boolean', help: 'Print each node\'s new state and the summary as JSON' },
};

/** Patches in flight at once: a fleet-wide change must not open thousands of sockets. */
const PARALLEL = 16;

function compact(value: unknown): string {
  return value === null ? '-' : JSON.stringify(value);
}

export function stateText(s: ApiNodeState, now = Date.now()): string {
  const lines = [
    `node      ${s.node_id}`,
    `version   ${s.version}${s.version === 0 ? ' (no desired state set)' : ''}`,
    `in sync   ${s.in_sync ? 'yes' : 'no'}`,
    `desired   ${compact(s.desired)}`,
    `reported  ${compact(s.reported)}${s.reported_version !== null ? ` (version ${s.reported_version})` : ''}`,
    `delta     ${compact(s.delta)}`,
  ];
  if (s.reported_error !== null) lines.push(`error     ${s.reported_error}`);
  lines.push(`updated   ${ago(s.updated_at, now)}`);
  return `${lines.join('\n')}\n`;
}

const path = (id: string, leaf: 'state' | 'desired') => `federation/nodes/${encodeURIComponent(id)}/${leaf}`;

async function runShow(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = commandFlags('state show', argv, SHOW_SPECS, env, { usage: 'edgefed state show NODE_ID [--json]', summary: 'Shows a node\'s desired and reported state, its delta and whether it is in sync.' }, 1);
  if (!parsed) return 0;
  const [id] = parsed.positionals;
  if (id === undefined) throw new CliError('edgefed state show: give a node id. Run "edgefed state show --help".');
  const state = await getJson<ApiNodeState>(hubOf(parsed.flags), path(id, 'state'));
  process.stdout.write(parsed.flags.json ? `${JSON.stringify(state, null, 2)}\n` : stateText(state));
  return 0;
}

function readPatch(flags: Flags): Record<string, unknown> {
  const text = str(flags, 'patch');
  if (text === undefined) throw new CliError('edgefed state set: --patch JSON is required, e.g. --patch \'{"interval_s": 5}\'. Run "edgefed state set --help".');
  const parsed = parseObject(text);
  if (!parsed.ok) throw new CliError(`edgefed state set: --patch must be a JSON object (a merge patch): ${parsed.reason}`);
  return parsed.value;
}

/** The nodes named, or those matching the filter (asked of the hub once). */
async function targets(hub: HubTarget, flags: Flags, ids: string[]): Promise<string[]> {
  const capability = str(flags, 'capability');
  const labels = list(flags, 'label');
  const filtered = capability !== undefined || labels.length > 0;
  if (filtered && ids.length > 0) throw new CliError('edgefed state set: give node ids or --capability/--label, not both');
  if (!filtered) {
    if (ids.length === 0) throw new CliError('edgefed state set: give node ids, or --capability C / --label K=V for every matching node');
    return ids;
  }
  const query = new URLSearchParams();
  if (capability !== undefined) query.set('capability', capability);
  for (const l of labels) query.append('label', l);
  const nodes = await listAllNodes(hub, query);
  return nodes.filter((n) => n.status !== 'deregistered').map((n) => n.node_id);
}

interface Outcome { node_id: string; ok: boolean; state?: ApiNodeState; error?: string }

async function patchAll(hub: HubTarget, ids: string[], patch: Record<string, unknown>, headers: Record<string, string>): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(ids.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < ids.length; i = next++) {
      const id = ids[i]!;
      try {
        outcomes[i] = { node_id: id, ok: true, state: await patchJson<ApiNodeState>(hub, path(id, 'desired'), patch, headers) };
      } catch (err) {
        outcomes[i] = { node_id: id, ok: false, error: err instanceof Error ? err.message : String(err) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, ids.length) }, worker));
  return outcomes;
}

async function runSet(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = commandFlags('state set', argv, SET_SPECS, env, {
    usage: 'edgefed state set NODE_ID... --patch JSON [--if-version N]\n       edgefed state set --capability C [--label K=V ...] --patch JSON',
    summary: 'Changes the desired state of nodes with a JSON merge patch (null removes a key); each change raises a node\'s version.',
  }, Number.MAX_SAFE_INTEGER);
  if (!parsed) return 0;
  const { flags, positionals } = parsed;
  const patch = readPatch(flags);
  const ifVersion = int(flags, 'if-version', { min: 0 });
  const headers: Record<string, string> = ifVersion === undefined ? {} : { 'if-match': `"${ifVersion}"` };
  const hub = hubOf(flags);
  const ids = await targets(hub, flags, positionals);
  const outcomes = await patchAll(hub, ids, patch, headers);
  const failed = outcomes.filter((o) => !o.ok);
  const summary = { nodes: ids.length, changed: ids.length - failed.length, failed: failed.length };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ ...summary, results: outcomes }, null, 2)}\n`);
  } else {
    for (const o of outcomes) {
      process.stdout.write(o.ok ? `${o.node_id}: version ${o.state!.version}${o.state!.in_sync ? ', in sync' : ''}\n` : `${o.node_id}: FAILED ${o.error}\n`);
    }
    process.stdout.write(ids.length === 0 ? 'No nodes match.\n' : `${summary.changed} of ${summary.nodes} node(s) set${failed.length > 0 ? `, ${failed.length} failed` : ''}\n`);
  }
  return failed.length > 0 ? 1 : 0;
}

const SUBCOMMANDS: Record<string, (argv: string[], env: NodeJS.ProcessEnv) => Promise<number>> = { show: runShow, set: runSet };

export async function runState(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write('Usage: edgefed state show NODE_ID [--json]\n       edgefed state set NODE_ID... --patch JSON [--if-version N] [--json]\n       edgefed state set --capability C [--label K=V ...] --patch JSON\n\nA node\'s desired state (what it should run) and reported state (what it runs). Run "edgefed state <show|set> --help".\n');
    return name === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS[name];
  if (!sub) throw new CliError(`edgefed state: unknown subcommand "${name}"; use show or set. Run "edgefed state --help".`);
  return sub(rest, env);
}
