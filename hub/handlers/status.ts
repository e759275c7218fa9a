import type { NodeStatus } from '../../lib/wire.js';
import type { HubContext } from '../context.js';

/** `nodes/{id}/status`: online, or offline (shutdown, or the Last Will: lost). */
export function handleStatus(ctx: HubContext, nodeId: string, status: NodeStatus | null, live: boolean, deferred = false): void {
  if (status === null) return; // a cleared retained status says nothing about the node
  if (!deferred && live && ctx.willGraceMs > 0 && status.state === 'offline' && (status.reason ?? 'lost') === 'lost' && status.session !== undefined) {
    ctx.deferWill(nodeId, () => handleStatus(ctx, nodeId, status, live, true));
    return;
  }
  const outcome = ctx.registry.applyStatus(nodeId, status, { now: ctx.now(), live });
  if (outcome === 'older_session') {
    ctx.counters.ignored.older_session += 1;
    const current = ctx.registry.get(nodeId)?.boot_id;
    ctx.log.info({ node_id: nodeId, boot_id: status.boot_id, current_boot_id: current, state: status.state }, 'status of an older session ignored');
    return;
  }
  if (outcome === 'unknown_node') {
    ctx.counters.ignored.unknown_node += 1;
    if (live && status.state === 'online') ctx.requestRebirth(nodeId);
  }
}
