import type { Registration } from '../../lib/wire.js';
import type { HubContext } from '../context.js';
import { takeEcho } from '../republish.js';

/**
 * `nodes/{id}/registration` (and `POST /federation/register`): a birth, an
 * update, or (empty payload) a deregistration. What it changes, the registry
 * reports to the hub's change sink (hub/changes.ts): counted, logged, stored.
 */
export function handleRegistration(ctx: HubContext, nodeId: string, reg: Registration | null, live: boolean): void {
  if (reg === null) {
    ctx.registry.deregister(nodeId, ctx.now());
    return;
  }
  ctx.resync.seen.add(nodeId); // the broker holds it: no need to re-publish it
  const { outcome } = ctx.registry.applyRegistration(reg, { now: ctx.now(), live });
  if (outcome === 'older') {
    ctx.counters.ignored.older_copy += 1; // e.g. a delayed copy of this boot's earlier announcement
    return;
  }
  if (outcome !== 'duplicate') return;
  // The hub's own re-publication coming back is expected and proves nothing.
  // Any other live copy is the device publishing the same bytes again (a
  // fixed mosquitto_pub payload): still a sign of life.
  if (takeEcho(ctx, nodeId) || !live) {
    ctx.counters.ignored.duplicate += 1;
    return;
  }
  ctx.registry.applyHeartbeat(nodeId, {}, ctx.now());
}
