/**
 * The one dispatcher for node messages: parses the topic once, admits the
 * payload, and hands it to the handler of its family (as aedes switches on
 * packet.cmd). Anything refused goes to Refusals and nowhere else.
 */
import { isValidId } from '../lib/ids.js';
import type { NodeFamily } from '../lib/topics.js';
import { admitNodeMessage, type Admitted } from './admission.js';
import type { HubContext } from './context.js';
import { handleHeartbeat } from './handlers/heartbeat.js';
import { handleRegistration } from './handlers/registration.js';
import { handleStatus } from './handlers/status.js';

export interface RouterOptions {
  maxPayloadBytes: number;
  /** Called after a refused message on a retained topic, to undo what an external broker kept. */
  onRefusedRetained?: (nodeId: string, family: 'registration' | 'status') => void;
  /** Handler for execution updates (work packages), plugged in by the WPK module. */
  onExecution?: (ctx: HubContext, nodeId: string, value: Extract<Admitted, { family: 'executions' }>['value']) => void;
  /** A node's reported state, admitted (desired state, hub/state/). */
  onReported?: (nodeId: string, value: Extract<Admitted, { family: 'reported' }>['value']) => void;
  /** A desired state seen on the broker (the hub's own, replayed or echoed, or a foreign one): checked, not admitted. */
  onDesired?: (nodeId: string, payload: Buffer, retained: boolean) => void;
  /** Called for every trigger seen on the broker (the hub's own echoes included). */
  onTrigger?: (topic: string) => void;
}

const ROUTED: ReadonlySet<NodeFamily> = new Set(['registration', 'status', 'heartbeat', 'executions', 'reported']);

export function createRouter(ctx: HubContext, opts: RouterOptions) {
  return function route(topic: string, payload: Buffer, retained: boolean): void {
    const parsed = ctx.topics.parse(topic);
    if (parsed?.kind === 'trigger') return opts.onTrigger?.(topic);
    if (parsed?.kind === 'node' && parsed.family === 'desired') return isValidId(parsed.nodeId) ? opts.onDesired?.(parsed.nodeId, payload, retained) : undefined;
    if (parsed?.kind !== 'node' || !ROUTED.has(parsed.family)) return;
    const admission = admitNodeMessage(parsed.family, parsed.nodeId, payload, opts.maxPayloadBytes, parsed.wpkId);
    if (!admission.ok) {
      ctx.refusals.record({ code: admission.code, reason: admission.reason, topic, nodeId: parsed.nodeId, via: 'mqtt' });
      if (parsed.family === 'registration' || parsed.family === 'status') opts.onRefusedRetained?.(parsed.nodeId, parsed.family);
      return;
    }
    dispatch(ctx, opts, parsed.nodeId, admission.message, !retained);
  };
}

function dispatch(ctx: HubContext, opts: RouterOptions, nodeId: string, message: Admitted, live: boolean): void {
  ctx.counters.messages[message.family] += 1;
  switch (message.family) {
    case 'registration': return handleRegistration(ctx, nodeId, message.value, live);
    case 'status': return handleStatus(ctx, nodeId, message.value, live);
    case 'heartbeat': {
      handleHeartbeat(ctx, nodeId, message.value);
      return;
    }
    case 'executions': return opts.onExecution?.(ctx, nodeId, message.value);
    case 'reported': return opts.onReported?.(nodeId, message.value);
  }
}
