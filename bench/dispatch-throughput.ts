/**
 * dispatch-throughput: N agents (child process, loopback TCP), the hub and
 * its embedded broker (this process). A closed loop keeps K work packages
 * (`echo`, mode one) in flight: each `succeeded` update the hub receives
 * (see wpk-harness.ts) makes room for one more `hub.wpks.create()`. K steps
 * up (e.g. 8, 32, 128, 512, 2048; the fleet has N x 4 slots); each step
 * warms up, then counts the WPKs completed per second over its window, with
 * the trigger-to-succeeded latency of the WPKs that completed in it. The hub
 * saturates where a larger K no longer completes more per second (only the
 * latency grows).
 *
 * `noDelay` and `ownCapability`: the ablations of dispatch-latency.ts.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startProfile } from './profile.js';
import { percentile, round } from './stats.js';
import { attemptKey, epochNow, sleep, startWpkBench, waitUntil } from './wpk-harness.js';

export interface ThroughputOptions { nodes: number; steps: number[]; warmupMs: number; windowMs: number; noDelay?: boolean; ownCapability?: boolean }

export interface StepResult {
  in_flight: number;
  completed_per_s: number;
  p50_ms: number;
  p99_ms: number;
  hub_cpu_percent: number;
  fleet_cpu_percent: number;
  hub_loop_delay_p99_ms: number;
  trigger_deliveries_per_s: number;
}

export async function dispatchThroughput(o: ThroughputOptions): Promise<Record<string, unknown>> {
  const b = await startWpkBench({ nodes: o.nodes, noDelay: o.noDelay ?? true, ownCapability: o.ownCapability ?? false });
  const { fed, probe } = b;
  b.probe.record = true;
  let inFlight = 0;
  let limit = 0;
  let failed = 0;
  let duplicates = 0;
  const finished = new Set<string>();
  let refillQueued = false;
  // Completions inside the measuring window (epoch ms bounds) and their latencies.
  let windowStart = Infinity;
  let windowEnd = Infinity;
  let completedInWindow = 0;
  const latencies: number[] = [];

  let created = 0;
  const refill = () => {
    refillQueued = false;
    while (inFlight < limit) {
      inFlight += 1;
      fed.hub.wpks.create({ capability: b.capabilityOf(created++), action: 'echo', params: { n: 1 } }).catch(() => { failed += 1; inFlight -= 1; });
    }
  };
  probe.onUpdate = (u, at) => {
    if (u.state !== 'succeeded' && u.state !== 'failed' && u.state !== 'rejected' && u.state !== 'timed_out') return;
    const a = probe.attempts.get(attemptKey(u.wpk_id, u.attempt));
    probe.attempts.delete(attemptKey(u.wpk_id, u.attempt)); // bounded memory over long runs
    if (u.state !== 'succeeded') { failed += 1; return; } // the hub retries elsewhere: still in flight
    // A WPK completes once; a later success of another attempt means the action ran twice.
    if (finished.has(u.wpk_id)) { duplicates += 1; return; }
    finished.add(u.wpk_id);
    inFlight -= 1;
    if (at >= windowStart && at < windowEnd) {
      completedInWindow += 1;
      if (a) latencies.push(at - a.trigger);
    }
    if (!refillQueued && inFlight < limit) { refillQueued = true; setImmediate(refill); }
  };

  const steps: StepResult[] = [];
  let profileStep = Number(process.env.BENCH_PROFILE_STEP ?? o.steps.at(-1));
  if (!o.steps.includes(profileStep)) profileStep = o.steps.at(-1)!;
  let fleetStart: Awaited<ReturnType<typeof b.fleet.stats>> | undefined;
  let fleetEnd: typeof fleetStart;
  try {
    await sleep(2000);
    fleetStart = await b.fleet.stats();
    for (const k of o.steps) {
      limit = k;
      refill();
      await sleep(o.warmupMs);
      const fleet0 = await b.fleet.stats();
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const profile = await startProfile(k === profileStep ? process.env.BENCH_PROFILE : undefined);
      const cpu0 = process.cpuUsage();
      completedInWindow = 0;
      latencies.length = 0;
      const t0 = performance.now();
      windowStart = epochNow();
      windowEnd = Infinity;
      await sleep(o.windowMs);
      windowEnd = epochNow();
      const elapsed = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      await profile.stop();
      loop.disable();
      const fleet1 = await b.fleet.stats();
      steps.push({
        in_flight: k,
        completed_per_s: round(completedInWindow / (elapsed / 1000)),
        p50_ms: round(percentile(latencies, 50), 2),
        p99_ms: round(percentile(latencies, 99), 2),
        hub_cpu_percent: round(((cpu.user + cpu.system) / 1000 / elapsed) * 100),
        fleet_cpu_percent: round(((fleet1.cpu_ms - fleet0.cpu_ms) / (fleet1.wall_ms - fleet0.wall_ms)) * 100),
        hub_loop_delay_p99_ms: round(Math.max(0, loop.percentile(99) / 1e6 - 1), 2),
        trigger_deliveries_per_s: round((fleet1.trigger_deliveries - fleet0.trigger_deliveries) / ((fleet1.wall_ms - fleet0.wall_ms) / 1000)),
      });
    }
    // Drain: stop creating and let what is in flight finish (bounded).
    limit = 0;
    await waitUntil(() => inFlight <= 0, 60_000, 'in-flight WPKs drained').catch(() => undefined);
    await sleep(1000);
    fleetEnd = await b.fleet.stats();
  } finally {
    probe.onUpdate = undefined;
    limit = 0;
    await b.stop();
  }
  const best = steps.reduce((a, s) => (s.completed_per_s > a.completed_per_s ? s : a), steps[0]!);
  // Saturation: the first step after which a larger K gains less than 10 % (null: still growing at the last step).
  const knee = steps.find((s, i) => i + 1 < steps.length && steps[i + 1]!.completed_per_s < s.completed_per_s * 1.1);
  return {
    nodes: o.nodes,
    tcp_nodelay: String(o.noDelay ?? true),
    trigger_topic: `addressed to the assignee (wpk/{cap}/trigger/{node})${o.ownCapability ? '; ablation: each node has its own capability' : ''}`,
    window_s: round(o.windowMs / 1000),
    peak_completed_per_s: best.completed_per_s,
    peak_at_in_flight: best.in_flight,
    saturates_at_in_flight: knee?.in_flight ?? null,
    target: '>= 2000 WPK/s',
    not_succeeded_updates: failed,
    duplicate_executions: duplicates,
    // Counted by the agents over the whole run: `succeeded` sent for a WPK that had already succeeded somewhere.
    agent_duplicate_executions: fleetEnd && fleetStart ? fleetEnd.duplicate_succeeded - fleetStart.duplicate_succeeded : null,
    agent_succeeded_updates: fleetEnd && fleetStart ? fleetEnd.succeeded_publishes - fleetStart.succeeded_publishes : null,
    wpks_created: created,
    broadcast_trigger_deliveries: fleetEnd && fleetStart ? fleetEnd.broadcast_trigger_deliveries - fleetStart.broadcast_trigger_deliveries : null,
    trigger_deliveries: fleetEnd && fleetStart ? fleetEnd.trigger_deliveries - fleetStart.trigger_deliveries : null,
    triggers_published: fed.hub.counters().wpks.triggers,
    redispatches: fed.hub.counters().wpks.redispatches,
    steps,
  };
}
