// @ts-check
/**
 * A node's desired state, reported state and delta (GET
 * /federation/nodes/:id/state), shown under the node table when a row is
 * clicked. Asked on demand: the feed carries only whether a node is in sync,
 * since 5,000 deltas of up to 16 KB would not fit in a page's snapshot.
 */

/** @typedef {import('../lib/api.js').ApiNodeState} ApiNodeState */

/** @param {{ api: { get: <T>(path: string) => Promise<import('./api.js').ApiResult<T>> } }} opts */
export function createNodeState(opts) {
  const panel = /** @type {HTMLElement} */ (document.getElementById('node-state'));
  /** @param {string} nodeId */
  async function show(nodeId) {
    const res = await opts.api.get(`/federation/nodes/${encodeURIComponent(nodeId)}/state`);
    panel.hidden = false;
    if (!res.ok) {
      panel.textContent = `${nodeId}: ${res.message}`;
      return;
    }
    const s = /** @type {ApiNodeState} */ (res.body);
    const lines = [
      `${s.node_id} · desired state v${s.version} · ${s.in_sync ? 'in sync' : 'OUT OF SYNC'}`,
      `delta     ${JSON.stringify(s.delta)}`,
      `desired   ${JSON.stringify(s.desired)}`,
      `reported  ${s.reported === null ? '-' : JSON.stringify(s.reported)}${s.reported_version !== null ? ` (v${s.reported_version})` : ''}`,
    ];
    if (s.reported_error) lines.push(`error     ${s.reported_error}`);
    panel.textContent = lines.join('\n');
  }
  return { show };
}
