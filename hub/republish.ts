/**
 * After every (re)connect: bring the broker's retained store back in line
 * with the registry, and (at start) ask live nodes to re-announce.
 * Registrations the broker still holds arrive as retained replays right after
 * subscribing; once they stop arriving, every registered node the broker did
 * not replay is re-published retained from the registry, so a fresh
 * `mosquitto_sub` sees the whole fleet even after the embedded broker's
 * in-memory store was lost. The copy carries the node's own boot_id and ts,
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

export async function waitForReplay(ctx: HubContext, opts: ResyncOptions, isStopped: () => boolean): Promise<void> {
  const started = Date.now();
  let lastCount = -1;
  let quietSince = Date.now();
  while (!isStopped() && Date.now() - started < opts.maxWaitMs) {
    if (ctx.seenSinceConnect.size !== lastCount) {
      lastCount = ctx.seenSinceConnect.size;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= opts.settleMs) {
      return;
    }
    await new Promise((r) => setTimeout(r, Math.min(50, opts.settleMs)));
  }
}

export function republishMissing(ctx: HubContext): number {
  let count = 0;
  for (const record of ctx.registry.all()) {
    if (record.status === 'deregistered' || ctx.seenSinceConnect.has(record.node_id)) continue;
    ctx.expectedEchoes.add(record.node_id);
    ctx.out.publish(ctx.topics.registration(record.node_id), JSON.stringify(registrationOf(record)), { qos: 1, retain: true });
    count += 1;
  }
  return count;
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
