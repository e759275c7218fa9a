/**
 * failover: N agents (child process, loopback TCP, keepalive K), the hub and
 * its embedded broker (this process). V work packages (`sleep` for 10 min,
 * mode one) are created; the least-loaded rule puts them on V different
 * nodes. Once every one reported `running`, the fleet process kills those V
 * assignees at once, in one of two ways (see wpk-fleet.ts):
 *
 *  - silent: a network cut. The sockets stay open but nothing is read or
 *    written any more (no FIN, no RST), so only the broker's keepalive timer
 *    (1.5 x K after the node's last packet) notices and publishes the wills;
 *  - close: the sockets are destroyed, as the kernel does for a SIGKILLed
 *    process; the broker publishes each will at once.
 *
 * Measured per WPK: from the kill (the fleet's clock, read just before it
 * cuts the first socket) to the hub handing the attempt-2 trigger to its MQTT
 * client (this process, same clock). To split that delay, also when the hub
 * learned that each victim is no longer active (the WPK service's
 * `nodeChanged` entry, wrapped like the probe's hooks, called by the status
 * handler once the will arrived) and, in the silent case, when the broker's
 * keepalive timer fired (aedes `keepaliveTimeout` event). Bound: 1.5 x K + 1 s.
 */
import { median, round } from './stats.js';
import { epochNow, startWpkBench, waitUntil } from './wpk-harness.js';

export interface FailoverOptions { nodes: number; victims: number; keepaliveS: number; heartbeatMs: number; runs: number }

interface CaseRun { delays: number[]; offlineDelays: number[]; keepaliveDelays: number[]; hubReaction: number[]; reasons: Record<string, number> }

async function oneCase(o: FailoverOptions, how: 'silent' | 'close'): Promise<CaseRun> {
  const b = await startWpkBench({ nodes: o.nodes, keepaliveS: o.keepaliveS, heartbeatMs: o.heartbeatMs });
  const { fed, probe, fleet } = b;
  const offlineAt = new Map<string, number>();
  const keepaliveAt = new Map<string, number>();
  let watching = false;
  const svc = fed.hub.wpks as unknown as { nodeChanged(nodeId: string): void };
  const nodeChanged = svc.nodeChanged.bind(svc);
  svc.nodeChanged = (nodeId) => {
    const at = epochNow();
    if (watching && !offlineAt.has(nodeId) && fed.hub.node(nodeId)?.status !== 'active') offlineAt.set(nodeId, at);
    nodeChanged(nodeId);
  };
  const onKeepalive = (client: { id: string }) => { if (watching && !keepaliveAt.has(client.id)) keepaliveAt.set(client.id, epochNow()); };
  fed.broker!.aedes.on('keepaliveTimeout', onKeepalive);
  try {
    const created = await Promise.all(Array.from({ length: o.victims }, () =>
      fed.hub.wpks.create({ capability: b.capability, action: 'sleep', params: { ms: 600_000 }, timeout_ms: 900_000 })));
    const ids = created.map((w) => w.wpk_id);
    const first = () => ids.map((id) => probe.attempts.get(`${id}#1`));
    await waitUntil(() => first().every((a) => a?.running !== undefined), 30_000, `${o.victims} WPKs running`);
    const victims = [...new Set(first().map((a) => a!.assignee!))];
    if (victims.length !== o.victims) throw new Error(`the ${o.victims} WPKs landed on ${victims.length} nodes, not on ${o.victims} different ones`);
    watching = true;

    const { at: killedAt, cut } = await fleet.cut(victims, how);
    if (cut !== victims.length) throw new Error(`fleet cut ${cut} of ${victims.length} victims`);
    const bound = 1.5 * o.keepaliveS * 1000 + 1000;
    const second = () => ids.map((id) => probe.attempts.get(`${id}#2`));
    await waitUntil(() => second().every((a) => a !== undefined), bound + 30_000, 'every WPK re-dispatched');

    const reasons: Record<string, number> = {};
    for (const id of ids) {
      const why = fed.hub.wpks.get(id)?.executions[0]?.error ?? 'unknown';
      reasons[why] = (reasons[why] ?? 0) + 1;
    }
    const run: CaseRun = { delays: [], offlineDelays: [], keepaliveDelays: [], hubReaction: [], reasons };
    for (const [i, a] of first().entries()) {
      const t2 = second()[i]!;
      run.delays.push(t2.trigger - killedAt);
      const offline = offlineAt.get(a!.assignee!);
      if (offline !== undefined) {
        run.offlineDelays.push(offline - killedAt);
        run.hubReaction.push(t2.trigger - offline);
      }
      const keepalive = keepaliveAt.get(a!.assignee!);
      if (keepalive !== undefined) run.keepaliveDelays.push(keepalive - killedAt);
    }
    return run;
  } finally {
    fed.broker?.aedes.off('keepaliveTimeout', onKeepalive);
    await b.stop();
  }
}

export async function failover(o: FailoverOptions): Promise<Record<string, unknown>> {
  const bound = 1.5 * o.keepaliveS * 1000 + 1000;
  const out: Record<string, unknown> = {
    nodes: o.nodes, victims: o.victims, keepalive_s: o.keepaliveS, heartbeat_interval_ms: o.heartbeatMs, runs: o.runs, bound_ms: bound,
  };
  for (const how of ['silent', 'close'] as const) {
    const medians: number[] = [];
    const maxes: number[] = [];
    const offline: number[] = [];
    const keepalive: number[] = [];
    const reactions: number[] = [];
    let reasons: Record<string, number> = {};
    for (let r = 0; r < o.runs; r += 1) {
      const run = await oneCase(o, how);
      medians.push(median(run.delays));
      maxes.push(Math.max(...run.delays));
      offline.push(...run.offlineDelays);
      keepalive.push(...run.keepaliveDelays);
      reactions.push(...run.hubReaction);
      reasons = run.reasons;
    }
    out[how] = {
      redispatch_median_ms: round(median(medians)),
      redispatch_max_ms: round(Math.max(...maxes)),
      within_bound: Math.max(...maxes) <= bound,
      per_run_median_ms: medians.map((v) => round(v)),
      per_run_max_ms: maxes.map((v) => round(v)),
      broker_keepalive_timeout_after_kill_median_ms: keepalive.length > 0 ? round(median(keepalive)) : null,
      hub_saw_offline_after_kill_median_ms: round(median(offline)),
      redispatch_after_hub_saw_offline_median_ms: round(median(reactions), 2),
      redispatch_after_hub_saw_offline_max_ms: round(Math.max(...reactions), 2),
      lost_reason: reasons,
    };
  }
  return out;
}
