/**
 * What `edgefed simulate` leaves behind: unless `--keep`, its nodes are
 * removed from the hub when it stops (`DELETE /federation/nodes/:id`), so a
 * try-out does not leave a hundred offline nodes in the registry, the
 * dashboard and the counts for a week.
 */
import { deleteJson, HubRequestError, type HubTarget } from './hub-client.js';

/** Requests in flight at once: 10,000 nodes go in seconds without queueing thousands of sockets. */
const CONCURRENCY = 16;

export interface CleanupOutcome { removed: number; failed: string | undefined }

/** Removes the nodes; an unknown one (already gone) counts as removed. Stops at the first failure that would repeat. */
export async function removeSimulated(hub: HubTarget, ids: readonly string[]): Promise<CleanupOutcome> {
  let next = 0;
  let removed = 0;
  let failed: string | undefined;
  const worker = async () => {
    while (failed === undefined && next < ids.length) {
      const id = ids[next++]!;
      try {
        await deleteJson(hub, `federation/nodes/${encodeURIComponent(id)}`);
        removed += 1;
      } catch (err) {
        if (err instanceof HubRequestError && err.status === 404) removed += 1;
        else failed = (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, ids.length) }, worker));
  return { removed, failed };
}

/** One line for the operator: what was removed, or what stays and how to remove it. */
export function cleanupReport(o: CleanupOutcome, total: number, prefix: string): string {
  if (o.failed === undefined) return `simulate: removed ${o.removed} simulated node(s) from the hub (--keep leaves them)\n`;
  return `simulate: could not remove the simulated nodes (${o.failed}); ${total - o.removed} stay in the registry. `
    + `Remove them later with "edgefed nodes prune --offline-for 0s --label sim=true" (ids ${prefix}-0...${prefix}-${total - 1}).\n`;
}
