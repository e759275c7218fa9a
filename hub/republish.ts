/**
 * After every (re)connect: bring the broker's retained store back in line
 * with the registry, and (at start) ask live nodes to re-announce.
 * The hub's own retained status tells whether the broker kept its store: if
 * it is not replayed on subscribe, the store was lost (the embedded broker
 * keeps it in memory), and once replays stop arriving every registered node
 * the broker did not replay is re-published retained from the registry, so a
 * fresh `mosquitto_sub` sees the whole fleet again. A broker that kept its
 * store is left alone: what it lacks was deleted on purpose (deregistered). The copy carries the node's own boot_id and ts,
 * so it comes back to the hub as a duplicate and claims no liveness.
 */
import type { HubContext } from './context.js';
import { registrationOf } from './registry.js';

export interface ResyncOptions {
  /** Quiet time after the last replayed registration before the broker is deemed replayed. */
  settleMs: number;
  /** Upper bound on the wait. */
  maxWaitMs: number;
}

/** Resolves once replays stop arriving; false if the wait was abandoned (stopped, or a newer session). */
export async function waitForReplay(ctx: HubContext, opts: ResyncOptions, isStopped: () => boolean): Promise<boolean> {
  const generation = ctx.resync.generation;
  const started = Date.now();
  let lastCount = -1;
  let quietSince = Date.now();
  while (Date.now() - started < opts.maxWaitMs) {
    if (isStopped() || ctx.resync.generation !== generation) return false;
    if (ctx.resync.seen.size !== lastCount) {
      lastCount = ctx.resync.seen.size;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= opts.settleMs) {
      return true;
    }
    await new Promise((r) => setTimeout(r, Math.min(50, opts.settleMs)));
  }
  return ctx.resync.generation === generation && !isStopped();
}

/** Notes that the hub published this node's registration itself: its echo proves nothing. */
export function expectEcho(ctx: HubContext, nodeId: string): void {
  ctx.expectedEchoes.set(nodeId, (ctx.expectedEchoes.get(nodeId) ?? 0) + 1);
}

/** True (and counted off) when a copy of a registration is the echo of the hub's own publication. */
export function takeEcho(ctx: HubContext, nodeId: string): boolean {
  const n = ctx.expectedEchoes.get(nodeId);
  if (n === undefined) return false;
  if (n <= 1) ctx.expectedEchoes.delete(nodeId);
  else ctx.expectedEchoes.set(nodeId, n - 1);
  return true;
}

export function republishMissing(ctx: HubContext): number {
  let count = 0;
  for (const record of ctx.registry.all()) {
    if (record.status === 'deregistered' || ctx.resync.seen.has(record.node_id)) continue;
    expectEcho(ctx, record.node_id);
    ctx.out.publish(ctx.topics.registration(record.node_id), JSON.stringify(registrationOf(record)), { qos: 1, retain: true });
    count += 1;
  }
  return count;
}

/**
 * The broker kept its store but no longer holds these nodes' registrations:
 * they were deregistered (an empty retained registration) while the hub was
 * not listening. The registry follows the broker.
 */
export function deregisterMissing(ctx: HubContext): string[] {
  const gone: string[] = [];
  for (const record of [...ctx.registry.all()]) {
    if (record.status === 'deregistered' || ctx.resync.seen.has(record.node_id)) continue;
    if (ctx.registry.deregister(record.node_id, ctx.now())) gone.push(record.node_id);
  }
  return gone;
}

export function requestRebirthAll(ctx: HubContext): number {
  let count = 0;
  for (const record of ctx.registry.all()) {
    if (record.status === 'deregistered') continue;
    ctx.requestRebirth(record.node_id);
    count += 1;
  }
  return count;
}
