/** `edgefed nodes`: the registry as a table, or JSON, from the hub's HTTP API. */
import type { ApiNode } from '../lib/api.js';
import { NODE_STATES } from '../lib/states.js';
import { CliError, helpText, int, list, parseFlags, str, type FlagSpecs } from './args.js';
import { HUB_FLAGS, hubOf, listAllNodes } from './hub-client.js';
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
  const { flags } = parseFlags('nodes', argv, SPECS, env);
  if (flags.help) {
    process.stdout.write(helpText('edgefed nodes [options]', 'Lists the nodes in the hub registry.', SPECS));
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
