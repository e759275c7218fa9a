/**
 * wpk-rollout: N agents (child process, loopback TCP), the hub and its
 * embedded broker (this process). One mode-`all` WPK with a rollout of R a
 * minute over the whole fleet, per run: how evenly the hub spreads its
 * dispatches (the gaps between triggers against 60000/R ms: the issue's
 * "spread evenly, not sent in a burst"), how long the rollout takes against
 * the ideal (N - 1) x 60000/R, and the hub's CPU while it runs.
 */
import { percentile, round } from './stats.js';
import { epochNow, startWpkBench, waitUntil } from './wpk-harness.js';

export interface RolloutOptions { nodes: number; perMinute: number; runs: number }

interface RunResult {
  gap_p50_ms: number;
  gap_p1_ms: number;
  gap_p99_ms: number;
  /** Gaps under half the interval: dispatches that came in a burst. */
  bursts: number;
  duration_s: number;
  ideal_s: number;
  hub_cpu_percent: number;
  succeeded: number;
}

export async function wpkRollout(o: RolloutOptions): Promise<Record<string, unknown>> {
  const b = await startWpkBench({ nodes: o.nodes });
  const interval = 60_000 / o.perMinute;
  const runs: RunResult[] = [];
  try {
    for (let r = 0; r < o.runs; r += 1) {
      // The first trigger goes out inside create(): collect every trigger, keep this WPK's after.
      const triggers: Array<{ wpkId: string; at: number }> = [];
      b.probe.onTrigger = (t) => triggers.push({ wpkId: t.wpkId, at: t.trigger });
      const cpu0 = process.cpuUsage();
      const t0 = epochNow();
      const w = await b.fed.hub.wpks.create({ capability: b.capability, action: 'echo', mode: 'all', rollout: { max_per_minute: o.perMinute } });
      const ideal = ((o.nodes - 1) * interval) / 1000;
      await waitUntil(() => b.fed.hub.wpks.get(w.wpk_id)?.finished_at !== null, (ideal + 30) * 1000, `rollout ${r + 1} finished`, 20);
      const elapsed = epochNow() - t0;
      const cpu = process.cpuUsage(cpu0);
      const at = triggers.filter((t) => t.wpkId === w.wpk_id).map((t) => t.at);
      const gaps = at.slice(1).map((x, i) => x - at[i]!);
      const done = b.fed.hub.wpks.get(w.wpk_id)!;
      runs.push({
        gap_p50_ms: round(percentile(gaps, 50), 2), gap_p1_ms: round(percentile(gaps, 1), 2), gap_p99_ms: round(percentile(gaps, 99), 2),
        bursts: gaps.filter((g) => g < interval / 2).length,
        duration_s: round(elapsed / 1000, 2), ideal_s: round(ideal, 2),
        hub_cpu_percent: round(((cpu.user + cpu.system) / 1000 / elapsed) * 100),
        succeeded: done.executions.filter((e) => e.state === 'succeeded').length,
      });
    }
  } finally {
    b.probe.onTrigger = undefined;
    await b.stop();
  }
  return { nodes: o.nodes, per_minute: o.perMinute, interval_ms: round(interval, 2), runs };
}
