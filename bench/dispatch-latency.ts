/**
 * dispatch-latency: N agents (child process, loopback TCP) and the hub with
 * its embedded broker (this process). WPKs (`echo`, mode one) are created
 * through `hub.wpks.create()` at a fixed rate (open loop). For each, the time
 * from the hub handing its trigger to its MQTT client to the hub receiving
 * the node's `succeeded` update (see wpk-harness.ts for the exact points).
 *
 * Floor, in the same run and through the same broker with the same fleet
 * connected: a client of the hub's kind (mqtt.js over the broker's in-memory
 * transport) publishes a trigger-sized message on `bench/ping` (QoS 1) at the
 * same rate; one plain mqtt.js TCP client in the fleet process (an agent's
 * kind) publishes it back on `bench/pong` (QoS 1); the time from the publish
 * call to the pong's `message` event. Half the floor samples are taken
 * before the WPK window, half after.
 *
 * `ownCapability` (`--own-capability`) is an ablation, not the issue's
 * scenario: the i-th WPK goes to the capability only node i mod N has, so its
 * trigger reaches one agent instead of all N.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import { PING_TOPIC, PONG_TOPIC } from './wpk-protocol.js';
import { paced, sleep, startWpkBench, waitUntil, type AttemptTimes, type WpkBench } from './wpk-harness.js';
import { startProfile } from './profile.js';
import { percentile, round } from './stats.js';

export interface LatencyOptions { nodes: number; ratePerS: number; durationMs: number; floorMs: number; noDelay?: boolean; ownCapability?: boolean }

/** A payload the size of a real trigger, with the sequence number up front. */
function pingPayload(seq: number): string {
  const body = JSON.stringify({
    wpk_id: 'wpk_0123456789abcdef', capability: 'bench', action: 'echo', params: { seq }, mode: 'one', assignee: 'wn-999',
    attempt: 1, created_at: Date.now(), deadline: Date.now() + 3_600_000, timeout_ms: 600_000,
  });
  return `${seq}|${body}`;
}

async function floorWindow(pinger: MqttClient, ratePerS: number, durationMs: number): Promise<number[]> {
  const total = Math.max(1, Math.round((ratePerS * durationMs) / 1000));
  const sent = new Map<number, number>();
  const rtts: number[] = [];
  const onPong = (_topic: string, payload: Buffer) => {
    const at = performance.now();
    const seq = Number(payload.subarray(0, payload.indexOf(0x7c)).toString());
    const t = sent.get(seq);
    if (t !== undefined) { rtts.push(at - t); sent.delete(seq); }
  };
  pinger.on('message', onPong);
  await paced(ratePerS, total, (i) => {
    const payload = pingPayload(i);
    sent.set(i, performance.now());
    pinger.publish(PING_TOPIC, payload, { qos: 1 });
  });
  await waitUntil(() => rtts.length >= total, 30_000, `${total} pongs`).catch(() => undefined);
  pinger.off('message', onPong);
  return rtts;
}

async function wpkWindow(b: WpkBench, ratePerS: number, durationMs: number) {
  const total = Math.round((ratePerS * durationMs) / 1000);
  const ids: string[] = [];
  const creates: Promise<unknown>[] = [];
  b.probe.clear();
  await paced(ratePerS, total, (i) => {
    const p = b.fed.hub.wpks.create({ capability: b.capabilityOf(i), action: 'echo', params: { n: 1 } });
    creates.push(p.then((w) => ids.push(w.wpk_id)));
  });
  const createdAt = performance.now();
  await Promise.allSettled(creates);
  // Every WPK ends `succeeded` (perhaps on a later attempt) unless the system is far past saturation.
  const done = () => { const ok = new Set<string>(); for (const a of b.probe.attempts.values()) if (a.finalState === 'succeeded') ok.add(a.wpkId); return ok.size; };
  await waitUntil(() => done() >= total, 120_000, 'all WPKs succeeded').catch(() => undefined);
  return { total, drainMs: performance.now() - createdAt };
}

export async function dispatchLatency(o: LatencyOptions): Promise<Record<string, number | string>> {
  const b = await startWpkBench({ nodes: o.nodes, responder: true, noDelay: o.noDelay ?? false, ownCapability: o.ownCapability ?? false });
  let pinger: MqttClient | undefined;
  try {
    await sleep(2000); // let the registrations' flush and the fleet's start-up settle
    pinger = b.fed.broker!.connectInMemory({ clientId: 'bench-pinger', keepalive: 60, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => { pinger!.once('connect', () => resolve()); pinger!.once('error', reject); });
    await pinger.subscribeAsync(PONG_TOPIC, { qos: 1 });
    await floorWindow(pinger, o.ratePerS, 500); // warm-up, discarded
    const floor = await floorWindow(pinger, o.ratePerS, o.floorMs / 2);

    const fleet0 = await b.fleet.stats();
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const profile = await startProfile(process.env.BENCH_PROFILE);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const run = await wpkWindow(b, o.ratePerS, o.durationMs);
    const elapsed = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    await profile.stop();
    loop.disable();
    const fleet1 = await b.fleet.stats();

    // The floor after the window must not measure the window's backlog: wait
    // until the broker has stopped delivering triggers (bounded), then 2 s more.
    const quietBy = Date.now() + 120_000;
    let quiet = fleet1;
    for (let last = -1; Date.now() < quietBy;) {
      quiet = await b.fleet.stats();
      if (quiet.trigger_deliveries === last) break;
      last = quiet.trigger_deliveries;
      await sleep(1000);
    }
    await sleep(2000);
    const floorAfter = await floorWindow(pinger, o.ratePerS, o.floorMs / 2);
    const floorBefore = [...floor];
    floor.push(...floorAfter);

    // Per WPK: from its first trigger to the first `succeeded` update of any of its attempts.
    const attempts = [...b.probe.attempts.values()];
    const byWpk = new Map<string, { first?: AttemptTimes; done?: number; successes: number }>();
    for (const a of attempts) {
      const w = byWpk.get(a.wpkId) ?? { successes: 0 };
      byWpk.set(a.wpkId, w);
      if (a.attempt === 1) w.first = a;
      if (a.finalState === 'succeeded') {
        w.successes += 1;
        w.done = Math.min(w.done ?? Infinity, a.final!);
      }
    }
    const ok = [...byWpk.values()].filter((w) => w.first !== undefined && w.done !== undefined);
    const lat = ok.map((w) => w.done! - w.first!.trigger);
    const firstOk = ok.map((w) => w.first!).filter((a) => a.finalState === 'succeeded');
    const toAccepted = firstOk.filter((a) => a.accepted !== undefined).map((a) => a.accepted! - a.trigger);
    const toRunning = firstOk.filter((a) => a.running !== undefined).map((a) => a.running! - a.trigger);
    const duplicates = [...byWpk.values()].reduce((n, w) => n + Math.max(0, w.successes - 1), 0);
    // What one wpks.json write costs the hub's event loop now (lowdb stringifies every record on each flush).
    await b.fed.hub.flush();
    const wpksBytes = (await fs.stat(path.join(b.dir, 'wpks.json'))).size;
    const s0 = performance.now();
    JSON.stringify(b.fed.hub.wpks.list());
    const stringifyMs = performance.now() - s0;
    const floorP50 = percentile(floor, 50);
    const p50 = percentile(lat, 50);
    const deliveries = quiet.trigger_deliveries - fleet0.trigger_deliveries;
    const triggers = attempts.length;
    return {
      nodes: o.nodes,
      tcp_nodelay: String(o.noDelay ?? false),
      trigger_topic: o.ownCapability ? 'one subscriber (ablation: each node has its own capability)' : 'shared by all nodes',
      rate_per_s: o.ratePerS,
      duration_s: round(o.durationMs / 1000),
      wpks: run.total,
      succeeded: ok.length,
      not_succeeded: run.total - ok.length,
      redispatched: attempts.filter((a) => a.attempt > 1).length,
      // Attempts that also ran to `succeeded` after another attempt of the same WPK did (the action ran twice).
      duplicate_executions: duplicates,
      floor_samples: floor.length,
      floor_rtt_p50_ms: round(floorP50, 2),
      floor_rtt_p50_before_after_ms: `${round(percentile(floorBefore, 50), 2)} / ${round(percentile(floorAfter, 50), 2)}`,
      floor_rtt_p99_ms: round(percentile(floor, 99), 2),
      trigger_to_accepted_p50_ms: round(percentile(toAccepted, 50), 2),
      trigger_to_running_p50_ms: round(percentile(toRunning, 50), 2),
      trigger_to_succeeded_p50_ms: round(p50, 2),
      trigger_to_succeeded_p99_ms: round(percentile(lat, 99), 2),
      trigger_to_succeeded_max_ms: round(Math.max(...lat), 2),
      ratio_p50_to_floor: round(p50 / floorP50, 2),
      target: 'p50 < 3x floor, p99 < 25 ms',
      hub_cpu_percent_of_one_core: round(((cpu.user + cpu.system) / 1000 / elapsed) * 100),
      hub_event_loop_delay_p99_ms: round(Math.max(0, loop.percentile(99) / 1e6 - 1), 2),
      hub_event_loop_delay_max_ms: round(Math.max(0, loop.max / 1e6 - 1), 2),
      fleet_cpu_percent_of_one_core: round(((fleet1.cpu_ms - fleet0.cpu_ms) / (fleet1.wall_ms - fleet0.wall_ms)) * 100),
      triggers_published: triggers,
      deliveries_per_trigger: round(deliveries / Math.max(1, triggers), 1),
      drain_after_last_create_ms: round(run.drainMs),
      wpks_json_bytes: wpksBytes,
      wpks_json_stringify_ms: round(stringifyMs, 1),
    };
  } finally {
    await pinger?.endAsync(true);
    await b.stop();
  }
}
