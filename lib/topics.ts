import { isValidId } from './ids.js';
import { EdgefedError } from './errors.js';

/**
 * The only module that knows the topic root and the shape of every topic.
 * Everyone else builds topics with `topics(root)` and reads them with `parse`
 * (as Sparkplug's parseTopic/toString pair), never by concatenating strings.
 */
export const DEFAULT_TOPIC_ROOT = 'edgefed/v1';

/** The per-node topic families a node publishes. */
export type NodeFamily = 'registration' | 'status' | 'heartbeat' | 'executions' | 'commands' | 'desired' | 'reported';

export type ParsedTopic =
  | { kind: 'node'; family: NodeFamily; nodeId: string; wpkId?: string }
  | { kind: 'trigger'; capability: string; nodeId?: string }
  | { kind: 'hub-status' }
  | { kind: 'hub-error'; nodeId: string };

/** Sentinel error topic level for messages whose node id cannot be a topic level. */
export const INVALID_NODE_LEVEL = '_invalid';

export interface Topics {
  readonly root: string;
  registration(nodeId: string): string;
  status(nodeId: string): string;
  heartbeat(nodeId: string): string;
  execution(nodeId: string, wpkId: string): string;
  commands(nodeId: string): string;
  /** The node's desired state, retained, published by the hub only. */
  desired(nodeId: string): string;
  /** The state the node reports having applied, retained. */
  reported(nodeId: string): string;
  /**
   * `wpk/{capability}/trigger`, seen by every node of the capability; with a
   * node id, `wpk/{capability}/trigger/{node_id}`, seen by that node alone.
   */
  trigger(capability: string, nodeId?: string): string;
  hubStatus(): string;
  hubError(nodeId: string): string;
  /** Subscription pattern for one family of every node, e.g. `edgefed/v1/nodes/+/heartbeat`. */
  allNodes(family: Exclude<NodeFamily, 'executions'>): string;
  /** `edgefed/v1/nodes/+/executions/+` */
  allExecutions(): string;
  /** `edgefed/v1/wpk/#`: every trigger, broadcast or addressed. */
  allTriggers(): string;
  /** Everything below the root, for operators. */
  everything(): string;
  parse(topic: string): ParsedTopic | undefined;
}

export function validateRoot(root: string): string {
  if (root.length === 0 || /[+#\0]/.test(root) || root.startsWith('/') || root.endsWith('/') || root.startsWith('$')) {
    throw new EdgefedError('EDGEFED_ERR_TOPIC_ROOT', `"${root}" is not a usable topic root (no + # NUL, no leading $ or /, no trailing /)`);
  }
  return root;
}

export function topics(root: string = DEFAULT_TOPIC_ROOT): Topics {
  validateRoot(root);
  const prefix = `${root}/`;
  const nodes = `${root}/nodes/`;
  const rootLevels = root.split('/').length;
  return {
    root,
    registration: (id) => `${nodes}${id}/registration`,
    status: (id) => `${nodes}${id}/status`,
    heartbeat: (id) => `${nodes}${id}/heartbeat`,
    execution: (id, wpk) => `${nodes}${id}/executions/${wpk}`,
    commands: (id) => `${nodes}${id}/commands`,
    desired: (id) => `${nodes}${id}/desired`,
    reported: (id) => `${nodes}${id}/reported`,
    trigger: (cap, node) => (node === undefined ? `${root}/wpk/${cap}/trigger` : `${root}/wpk/${cap}/trigger/${node}`),
    hubStatus: () => `${root}/hub/status`,
    hubError: (id) => `${root}/hub/errors/${isValidId(id) ? id : INVALID_NODE_LEVEL}`,
    allNodes: (family) => `${nodes}+/${family}`,
    allExecutions: () => `${nodes}+/executions/+`,
    allTriggers: () => `${root}/wpk/#`,
    everything: () => `${root}/#`,
    parse(topic) {
      if (!topic.startsWith(prefix)) return undefined;
      return parseLevels(topic.split('/').slice(rootLevels));
    },
  };
}

const NODE_FAMILIES = new Set<string>(['registration', 'status', 'heartbeat', 'commands', 'desired', 'reported']);

/**
 * Parses the levels below the root. The node id level is returned as found
 * (even when it is not a valid id) so that a refusal can name it.
 */
function parseLevels(levels: string[]): ParsedTopic | undefined {
  const [a, b, c, d, ...rest] = levels;
  if (a === 'nodes' && b !== undefined && b.length > 0) {
    if (levels.length === 3 && c !== undefined && NODE_FAMILIES.has(c)) {
      return { kind: 'node', family: c as NodeFamily, nodeId: b };
    }
    if (levels.length === 4 && c === 'executions' && d !== undefined && d.length > 0) {
      return { kind: 'node', family: 'executions', nodeId: b, wpkId: d };
    }
    return undefined;
  }
  if (a === 'wpk' && levels.length === 3 && c === 'trigger' && b) return { kind: 'trigger', capability: b };
  if (a === 'wpk' && levels.length === 4 && c === 'trigger' && b && d) return { kind: 'trigger', capability: b, nodeId: d };
  if (a === 'hub' && b === 'status' && levels.length === 2) return { kind: 'hub-status' };
  if (a === 'hub' && b === 'errors' && c && levels.length === 3 && rest.length === 0) return { kind: 'hub-error', nodeId: c };
  return undefined;
}
