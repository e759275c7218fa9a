import type { Heartbeat } from '../../lib/wire.js';
import type { HubContext } from '../context.js';

/**
 * `nodes/{id}/heartbeat` (and `POST /federation/nodes/:id/heartbeat`):
 * liveness, kept in memory and written lazily; a return to `active` is a
 * durable change (the registry reports both). A beat over MQTT from a node
 * the hub does not know (its registration was lost) gets a rebirth request,
 * as in Sparkplug; over HTTP the caller is told instead (404).
 * Returns false for an unknown node.
 */
export function handleHeartbeat(ctx: HubContext, nodeId: string, hb: Pick<Heartbeat, 'load' | 'running_wpks'>, via: 'mqtt' | 'http' = 'mqtt'): boolean {
  const change = ctx.registry.applyHeartbeat(nodeId, hb, ctx.now());
  if (change !== 'unknown_node') return true;
  if (via === 'http') return false;
  ctx.counters.ignored.unknown_node += 1;
  // A deregistered node is known and was removed on purpose: asking it to
  // re-announce would quietly undo the deregistration.
  if (ctx.registry.get(nodeId)?.status !== 'deregistered') ctx.requestRebirth(nodeId);
  return false;
}
