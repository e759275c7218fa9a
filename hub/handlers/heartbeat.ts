import type { Heartbeat } from '../../lib/wire.js';
import type { HubContext } from '../context.js';

/**
 * `nodes/{id}/heartbeat`: liveness kept in memory and written lazily; only a
 * return to `active` is a durable change. A beat from a node the hub does not
 * know (its registration was lost) gets a rebirth request, as in Sparkplug.
 */
export function handleHeartbeat(ctx: HubContext, nodeId: string, hb: Heartbeat): void {
  ctx.counters.messages.heartbeat += 1;
  const change = ctx.registry.applyHeartbeat(nodeId, hb, ctx.now());
  if (change === 'unknown_node') {
    ctx.counters.ignored.unknown_node += 1;
    // A deregistered node is known and was removed on purpose: asking it to
    // re-announce would quietly undo the deregistration.
    if (ctx.registry.get(nodeId)?.status !== 'deregistered') ctx.requestRebirth(nodeId);
    return;
  }
  if (change === 'durable') {
    ctx.log.info({ node_id: nodeId }, 'node active again (heartbeat)');
    ctx.nodeChanged(nodeId);
  }
  if (change !== 'none') ctx.flusher.markDirty(change);
}
