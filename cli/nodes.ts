/** `edgefed nodes`: the registry as a table, or JSON, from the hub's HTTP API. */
import type { ApiNode } from '../lib/api.js';
import { NODE_STATES } from '../lib/states.js';
import { parseDuration } from '../lib/duration.js';
import { CliError, commandFlags, helpText, int, list, parseFlags, str, type FlagSpecs } from './args.js';
import { deleteJson, HUB_FLAGS, hubOf, listAllNodes, type HubTarget } from './hub-client.js';
import { ago, table } from './table.js';

const SPECS: FlagSpecs = {
  ...HUB_FLAGS,
  json: { type: 'boolean', help: 'Print the registry records as JSON' },
  capability: { type: 'string', value: 'C', help: 'Only nodes with this capability' },
  status: { type: 'string', value: 'S', help: `Only nodes in this status (${NODE_STATES.join(', ')})` },
  label: { type: 'string', multiple: true, value: 'K=V', help: 'Only nodes with this label (repeatable)' },
  limit: { type: 'string', value: 'N', help: 'At most N nodes (the first N by node id); the list is fetched 1,000 at a time' },
};

export function nodesTable(nodes: ApiNode[], now = Date.now()): string {
  const rows = nodes.map((n) => [
    n.node_id,
    // Why it is offline or stale (lost, shutdown, no_heartbeat, restored...): what an operator asks next.
    n.status_reason ? `${n.status} (${n.status_reason})` : n.unresponsive_since !== null ? `${n.status} (unresponsive)` : n.status,
    n.capabilities.join(','),
    Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-',
    ago(n.last_seen, now),
    n.load === null ? '-' : n.load.toFixed(2),
    n.endpoint ?? '-',
  ]);
  return table(['NODE_ID', 'STATUS', 'CAPABILITIES', 'LABELS', 'LAST_SEEN', 'LOAD', 'ENDPOINT'], rows);
}

export async function runNodes(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv[0] === 'rm') return runRemove(argv.slice(1), env);
  if (argv[0] === 'prune') return runPrune(argv.slice(1), env);
  const { flags } = parseFlags('nodes', argv, SPECS, env);
  if (flags.help) {
    process.stdout.write(helpText('edgefed nodes [options] | nodes rm ID... | nodes prune --offline-for DURATION [--dry-run]', 'Lists the nodes in the hub registry; rm removes nodes, prune those offline for long.', SPECS));
    return 0;
  }
  const query = new URLSearchParams();
  const status = str(flags, 'status');
  if (status !== undefined) {
    if (!(NODE_STATES as readonly string[]).includes(status)) throw new CliError(`--status must be one of ${NODE_STATES.join(', ')}`);
    query.set('status', status);
  }
  const capability = str(flags, 'capability');
  if (capability !== undefined) query.set('capability', capability);
  for (const l of list(flags, 'label')) query.append('label', l);
  const max = int(flags, 'limit', { min: 1, max: 10_000_000 }) ?? Infinity;
  const nodes = await listAllNodes(hubOf(flags), query, max);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(nodes, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(nodes.length === 0 ? 'No nodes match.\n' : `${nodesTable(nodes)}\n${nodes.length} node(s)\n`);
  return 0;
}

const RM_SPECS: FlagSpecs = { ...HUB_FLAGS };
const PRUNE_SPECS: FlagSpecs = {
  ...HUB_FLAGS,
  'offline-for': { type: 'string', value: 'DURATION', help: 'Remove nodes offline (or deregistered) for longer than this, e.g. 24h (required)' },
  'dry-run': { type: 'boolean', help: 'Only list what would be removed' },
  label: { type: 'string', multiple: true, value: 'K=V', help: 'Only nodes with this label, e.g. sim=true for those of edgefed simulate (repeatable)' },
};

/** `edgefed nodes rm ID...`: DELETE /federation/nodes/:id each; an unknown id is an error, the others still go. */
async function runRemove(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = commandFlags('nodes rm', argv, RM_SPECS, env, { usage: 'edgefed nodes rm ID... [options]', summary: 'Removes nodes: their records, their retained registration and status; work they held moves on.' }, Infinity);
  if (!parsed) return 0;
  if (parsed.positionals.length === 0) throw new CliError('edgefed nodes rm: give the node ids to remove; see edgefed nodes rm --help');
  return removeAll(hubOf(parsed.flags), parsed.positionals);
}

/** `edgefed nodes prune --offline-for 24h [--dry-run]`: the offline and deregistered nodes last seen before then. */
async function runPrune(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = commandFlags('nodes prune', argv, PRUNE_SPECS, env, { usage: 'edgefed nodes prune --offline-for DURATION [--dry-run] [options]', summary: 'Removes the nodes offline (or deregistered) for longer than DURATION.' });
  if (!parsed) return 0;
  const text = str(parsed.flags, 'offline-for');
  if (text === undefined) throw new CliError('edgefed nodes prune: --offline-for is required (e.g. --offline-for 24h); see edgefed nodes prune --help');
  let ms: number;
  try { ms = parseDuration(text); } catch { throw new CliError(`edgefed nodes prune: --offline-for must be a duration such as 24h or 7d, got "${text}"`); }
  const hub = hubOf(parsed.flags);
  const cutoff = Date.now() - ms;
  const gone: string[] = [];
  for (const status of ['offline', 'deregistered']) {
    const query = new URLSearchParams({ status });
    for (const l of list(parsed.flags, 'label')) query.append('label', l);
    for (const n of await listAllNodes(hub, query)) if ((n.last_seen ?? n.updated_at) < cutoff) gone.push(n.node_id);
  }
  if (gone.length === 0) {
    process.stdout.write(`No node has been offline for more than ${text}.\n`);
    return 0;
  }
  if (parsed.flags['dry-run']) {
    process.stdout.write(`${gone.join('\n')}\nwould remove ${gone.length} node(s)\n`);
    return 0;
  }
  return removeAll(hub, gone);
}

async function removeAll(hub: HubTarget, ids: string[]): Promise<number> {
  let failed = 0;
  for (const id of ids) {
    try {
      await deleteJson(hub, `federation/nodes/${encodeURIComponent(id)}`);
      process.stdout.write(`removed ${id}\n`);
    } catch (err) {
      failed += 1;
      process.stderr.write(`edgefed nodes: ${id}: ${(err as Error).message}\n`);
    }
  }
  if (ids.length > 1) process.stdout.write(`${ids.length - failed} of ${ids.length} node(s) removed\n`);
  return failed === 0 ? 0 : 1;
}
