/**
 * Admission: the checks every node message passes before it may touch the
 * registry, in the order a device maker would debug them (size, JSON, shape,
 * id, schema). One function serves the hub's router and the embedded broker's
 * retain gate, so "valid" means the same thing in both places.
 */
import { isValidId } from '../lib/ids.js';
import { MAX_PAYLOAD_BYTES } from '../lib/limits.js';
import { parseObject } from '../lib/json.js';

export { parseObject } from '../lib/json.js';
import type { NodeFamily } from '../lib/topics.js';
import type { ExecutionUpdate, Heartbeat, NodeStatus, RefusalCode, Registration, ReportedState } from '../lib/wire.js';
import { stateBoundsProblem } from '../lib/desired-state.js';
import { validators, type Validator } from '../schemas/index.js';

export interface Refusal {
  code: RefusalCode;
  reason: string;
}

/** What a node may publish on each family, after admission. */
export type Admitted =
  | { family: 'registration'; value: Registration | null }
  | { family: 'status'; value: NodeStatus | null }
  | { family: 'heartbeat'; value: Heartbeat }
  | { family: 'executions'; value: ExecutionUpdate }
  /** `null`: the retained reported state was cleared (a removed node). */
  | { family: 'reported'; value: ReportedState | null };

export type Admission = { ok: true; message: Admitted } | ({ ok: false } & Refusal);

export const DEFAULT_MAX_PAYLOAD_BYTES = MAX_PAYLOAD_BYTES;

const validatorOf: Record<Admitted['family'], Validator<unknown>> = {
  registration: validators.registration,
  status: validators.status,
  heartbeat: validators.heartbeat,
  executions: validators.executionUpdate,
  reported: validators.reportedState,
};

function refuse(code: RefusalCode, reason: string): Admission {
  return { ok: false, code, reason };
}

/**
 * Checks one message published by a node on `nodes/{topicNodeId}/{family}`.
 * An empty registration (the contract's deregistration) or status (cleared) is admitted as `null`.
 */
export function admitNodeMessage(
  family: NodeFamily,
  topicNodeId: string,
  payload: Buffer,
  maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES,
  topicWpkId?: string,
): Admission {
  if (family === 'commands') return refuse('not_allowed', 'only the hub publishes commands');
  if (family === 'desired') return refuse('not_allowed', 'only the hub publishes desired state');
  const shown = topicNodeId.slice(0, 80);
  if (!isValidId(topicNodeId)) {
    return refuse('invalid_node_id', `node id "${shown}" in the topic is not a valid id (letters, digits, . _ - only; 1-64 chars)`);
  }
  if (payload.length > maxPayloadBytes) {
    return refuse('too_large', `payload is ${payload.length} bytes; the limit is ${maxPayloadBytes}`);
  }
  // Empty retained payloads clear a topic: a deregistration, or a status wiped by an operator.
  if ((family === 'registration' || family === 'status' || family === 'reported') && payload.length === 0) return { ok: true, message: { family, value: null } };
  const parsed = parseObject(payload);
  if (!parsed.ok) return parsed;
  const checked = validatorOf[family](parsed.value);
  if (!checked.ok) return refuse('schema', checked.errors.join('; '));
  const body = parsed.value;
  if ((family === 'registration' || family === 'executions') && body.node_id !== topicNodeId) {
    return refuse('node_id_mismatch', `payload node_id "${String(body.node_id)}" differs from the topic's "${topicNodeId}"`);
  }
  if (family === 'executions' && topicWpkId !== undefined && body.wpk_id !== topicWpkId) {
    return refuse('schema', `payload wpk_id "${String(body.wpk_id)}" differs from the topic's "${topicWpkId}"`);
  }
  if (family === 'reported') {
    const problem = stateBoundsProblem((checked.value as ReportedState).state);
    if (problem) return refuse('too_large', `reported ${problem}`);
  }
  return { ok: true, message: { family, value: checked.value } as Admitted };
}
