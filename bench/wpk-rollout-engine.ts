/**
 * wpk-rollout-engine: the engine alone (the WPK service on a fake clock, no
 * broker, test/helpers/wpk-rig.ts): one rollout at 60,000 a minute over N
 * nodes, a warm-up of `warm` fake ms (so the queue's head is deep in the
 * list), then the real CPU time one more fake second of slots costs. Nodes
 * never answer and the accept timeout is out of reach, so what is measured
 * is the slots plus the sweep's walk over the executions in flight.
 */
import { wpkRig } from '../test/helpers/wpk-rig.js';
import { round } from './stats.js';

export interface RolloutEngineOptions { nodes: number; warmMs: number }

export async function wpkRolloutEngine(o: RolloutEngineOptions): Promise<Record<string, unknown>> {
  const cases: Array<Record<string, unknown>> = [];
  for (const [name, rollout] of [['rate', { max_per_minute: 60_000 }], ['ramp', { base_per_minute: 60_000, factor: 2, every_succeeded: 1_000_000 }]] as const) {
    const rig = wpkRig({ wpk: { acceptTimeoutMs: 1e9 } });
    for (let i = 0; i < o.nodes; i++) rig.node(`n${i}`, { maxConcurrency: 1 });
    const w = await rig.create({ mode: 'all', rollout, deadline: rig.clock.now() + 86_400_000 });
    rig.advance(o.warmMs);
    const t0 = performance.now();
    rig.advance(1000);
    const ms = performance.now() - t0;
    cases.push({ case: name, in_flight: w.executions.filter((e) => e.state !== 'queued').length, cpu_ms_per_fake_second: round(ms) });
    await rig.stop();
  }
  return { nodes: o.nodes, warm_ms: o.warmMs, cases };
}
