import type { Registration } from '../../lib/wire.js';
import type { HubContext } from '../context.js';
import { takeEcho } from '../republish.js';

/** `nodes/{id}/registration`: a birth, an update, or (empty payload) a deregistration. */
export function handleRegistration(ctx: HubContext, nodeId: string, reg: Registration | null, live: boolean): void {
  ctx.counters.messages.registration += 1;
  if (reg === null) return handleDeregistration(ctx, nodeId);
  ctx.resync.seen.add(nodeId); // the broker holds it: no need to re-publish it
  const { outcome, record } = ctx.registry.applyRegistration(reg, { now: ctx.now(), live });
  if (outcome === 'older') {
    ctx.counters.ignored.older_copy += 1; // e.g. a delayed copy of this boot's earlier announcement
    return;
  }
  if (outcome === 'duplicate') {
    // The hub's own re-publication coming back is expected and proves nothing.
    // Any other live copy is the device publishing the same bytes again (a
    // fixed mosquitto_pub payload): still a sign of life.
    if (takeEcho(ctx, nodeId) || !live) {
      ctx.counters.ignored.duplicate += 1;
      return;
    }
    if (ctx.registry.applyHeartbeat(nodeId, {}, ctx.now()) === 'durable') {
      ctx.flusher.markDirty('durable');
      ctx.log.info({ node_id: nodeId }, 'node active again (same registration re-published)');
      ctx.nodeChanged(nodeId);
    }
    return;
  }
  ctx.counters.registrations += 1;
  ctx.flusher.markDirty('durable');
  ctx.log.info(
    { node_id: nodeId, outcome, status: record.status, boot_id: reg.boot_id, capabilities: reg.capabilities, live },
    'node registered',
  );
  ctx.nodeChanged(nodeId);
}

function handleDeregistration(ctx: HubContext, nodeId: string): void {
  const record = ctx.registry.deregister(nodeId, ctx.now());
  if (!record) return;
  ctx.counters.deregistrations += 1;
  ctx.flusher.markDirty('durable');
  ctx.log.info({ node_id: nodeId }, 'node deregistered');
  ctx.nodeChanged(nodeId);
}
