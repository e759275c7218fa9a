/**
 * Copies one store's state into another: `edgefed store migrate` moves a
 * deployment from its lowdb files to PostgreSQL with it. Upserts only, so
 * running it twice changes nothing the second time; records the target has
 * and the source does not are kept (and counted), never deleted.
 */
import type { Store } from './types.js';

export interface CopyReport {
  nodes: { copied: number; new: number; replaced: number; kept_in_target: number };
  wpks: { copied: number; new: number; replaced: number; kept_in_target: number; executions: number };
}

export async function copyStore(from: Store, to: Store): Promise<CopyReport> {
  const source = await from.load();
  const target = await to.load();
  const nodeIds = new Set(target.nodes.map((r) => r.node_id));
  const wpkIds = new Set(target.wpks.map((w) => w.wpk_id));
  await to.writeNodes({ upserted: source.nodes, removed: [], liveness: [] });
  await to.writeWpks({ upserted: source.wpks, removed: [] });
  const sourceNodes = new Set(source.nodes.map((r) => r.node_id));
  const sourceWpks = new Set(source.wpks.map((w) => w.wpk_id));
  const replacedNodes = source.nodes.filter((r) => nodeIds.has(r.node_id)).length;
  const replacedWpks = source.wpks.filter((w) => wpkIds.has(w.wpk_id)).length;
  return {
    nodes: {
      copied: source.nodes.length, new: source.nodes.length - replacedNodes, replaced: replacedNodes,
      kept_in_target: target.nodes.filter((r) => !sourceNodes.has(r.node_id)).length,
    },
    wpks: {
      copied: source.wpks.length, new: source.wpks.length - replacedWpks, replaced: replacedWpks,
      kept_in_target: target.wpks.filter((w) => !sourceWpks.has(w.wpk_id)).length,
      executions: source.wpks.reduce((n, w) => n + w.executions.length, 0),
    },
  };
}
