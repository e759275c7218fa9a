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
 * Legs (`floor_legs_p50_ms`, `wpk_legs_p50_ms`): the fleet timestamps each
 * ping / trigger it parsed and each pong / update it handed to mqtt.js (same
 * epoch clock), which splits both round trips into out (hub -> fleet), turn
 * (inside the fleet) and back (fleet -> hub), so a gap to the floor can be
 * placed on one side.
 *
 * `noDelay` (default true, the product's; false with `--nagle`): see
 * wpk-harness.ts. `ownCapability` (`--own-capability`) is a historical
 * ablation: the i-th WPK goes to the capability only node i mod N has. Before
 * 967cc92 that gave its trigger one subscriber instead of N; now every
 * mode-one trigger is addressed to its assignee, so it only changes placement.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import { PING_TOPIC, PONG_TOPIC } from './wpk-protocol.js';
import { attemptKey, epochNow, paced, sleep, startWpkBench, waitUntil, type AttemptTimes, type WpkBench } from './wpk-harness.js';
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

/** One floor round trip: its sequence number, ping published, pong received (epoch ms). */
interface FloorSample { seq: number; sent: number; recv: number }
let nextSeq = 0;

async function floorWindow(pinger: MqttClient, ratePerS: number, durationMs: number): Promise<FloorSample[]> {
  const total = Math.max(1, Math.round((ratePerS * durationMs) / 1000));
  const pending = new Map<number, number>();
  const samples: FloorSample[] = [];
  const onPong = (_topic: string, payload: Buffer) => {
    const at = epochNow();
    const seq = Number(payload.subarray(0, payload.indexOf(0x7c)).toString());
    const t = pending.get(seq);
    if (t !== undefined) { samples.push({ seq, sent: t, recv: at }); pending.delete(seq); }
  };
  pinger.on('message', onPong);
  await paced(ratePerS, total, () => {
    const seq = nextSeq++;
    const payload = pingPayload(seq);
    pending.set(seq, epochNow());
    pinger.publish(PING_TOPIC, payload, { qos: 1 });
  });
  await waitUntil(() => samples.length >= total, 30_000, `${total} pongs`).catch(() => undefined);
  pinger.off('message', onPong);
  return samples;
}

/** p50 of each leg, in ms (2 decimals); legs whose ends were not both seen are left out. */
function legP50(values: number[]): number {
  return round(percentile(values.filter(Number.isFinite), 50), 3);
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

export async function dispatchLatency(o: LatencyOptions): Promise<Record<string, unknown>> {
  const b = await startWpkBench({ nodes: o.nodes, responder: true, noDelay: o.noDelay ?? true, ownCapability: o.ownCapability ?? false, trace: true });
  let pinger: MqttClient | undefined;
  try {
    await sleep(2000); // let the registrations' flush and the fleet's start-up settle
    pinger = b.fed.broker!.connectInMemory({ clientId: 'bench-pinger', keepalive: 60, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => { pinger!.once('connect', () => resolve()); pinger!.once('error', reject); });
    await pinger.subscribeAsync(PONG_TOPIC, { qos: 1 });
    await floorWindow(pinger, o.ratePerS, 500); // warm-up, discarded
    const floorBefore = await floorWindow(pinger, o.ratePerS, o.floorMs / 2);

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
    const end = await b.fleet.stats();
    const trace = await b.fleet.trace();
    const rtt = (s: FloorSample[]) => s.map((x) => x.recv - x.sent);
    const floorSamples = [...floorBefore, ...floorAfter];
    const floor = rtt(floorSamples);

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
    // Legs of each round trip, from the fleet's timestamps (same epoch clock; see FleetConfig.trace).
    const fleetFloor = new Map(trace.floor.map(([seq, recv, sent]) => [seq, { recv, sent }]));
    const floorLegs = floorSamples.flatMap((x) => { const f = fleetFloor.get(x.seq); return f ? [{ out: f.recv - x.sent, turn: f.sent - f.recv, back: x.recv - f.sent }] : []; });
    const fleetWpk = new Map(trace.wpk.map(([key, recv, accSent, succSent]) => [key, { recv, accSent, succSent }]));
    const wpkLegs = firstOk.flatMap((a) => {
      const f = fleetWpk.get(attemptKey(a.wpkId, a.attempt));
      if (!f || a.accepted === undefined || a.final === undefined) return [];
      return [{ out: f.recv - a.trigger, turn: f.accSent - f.recv, back: a.accepted - f.accSent, run: f.succSent - f.accSent, backSucc: a.final - f.succSent }];
    });
    const floorP50 = percentile(floor, 50);
    const p50 = percentile(lat, 50);
    const deliveries = quiet.trigger_deliveries - fleet0.trigger_deliveries;
    const triggers = attempts.length;
    return {
      nodes: o.nodes,
      tcp_nodelay: String(o.noDelay ?? true),
      trigger_topic: `addressed to the assignee (wpk/{cap}/trigger/{node})${o.ownCapability ? '; ablation: each node has its own capability' : ''}`,
      rate_per_s: o.ratePerS,
      duration_s: round(o.durationMs / 1000),
      wpks: run.total,
      succeeded: ok.length,
      not_succeeded: run.total - ok.length,
      redispatched: attempts.filter((a) => a.attempt > 1).length,
      // Attempts that also ran to `succeeded` after another attempt of the same WPK did (the action ran twice).
      duplicate_executions: duplicates,
      // The same, counted by the agents: `succeeded` updates sent for a WPK that had already succeeded somewhere.
      agent_succeeded_updates: end.succeeded_publishes - fleet0.succeeded_publishes,
      agent_duplicate_executions: end.duplicate_succeeded - fleet0.duplicate_succeeded,
      floor_samples: floor.length,
      floor_rtt_p50_ms: round(floorP50, 2),
      floor_rtt_p50_before_after_ms: `${round(percentile(rtt(floorBefore), 50), 2)} / ${round(percentile(rtt(floorAfter), 50), 2)}`,
      floor_rtt_p99_ms: round(percentile(floor, 99), 2),
      trigger_to_accepted_p50_ms: round(percentile(toAccepted, 50), 2),
      trigger_to_running_p50_ms: round(percentile(toRunning, 50), 2),
      trigger_to_succeeded_p50_ms: round(p50, 2),
      trigger_to_succeeded_p99_ms: round(percentile(lat, 99), 2),
      trigger_to_succeeded_max_ms: round(Math.max(...lat), 2),
      ratio_p50_to_floor: round(p50 / floorP50, 2),
      // p50 of each leg (ms): out = hub publish call -> fleet parsed it; turn = fleet parsed it -> reply handed to mqtt.js;
      // back = reply handed to mqtt.js -> hub has it (floor: pong event; WPK: the router's admitted update).
      floor_legs_p50_ms: { out: legP50(floorLegs.map((l) => l.out)), turn: legP50(floorLegs.map((l) => l.turn)), back: legP50(floorLegs.map((l) => l.back)), samples: floorLegs.length },
      wpk_legs_p50_ms: {
        out: legP50(wpkLegs.map((l) => l.out)), turn_to_accepted: legP50(wpkLegs.map((l) => l.turn)), back_accepted: legP50(wpkLegs.map((l) => l.back)),
        accepted_to_succeeded_sent: legP50(wpkLegs.map((l) => l.run)), back_succeeded: legP50(wpkLegs.map((l) => l.backSucc)), samples: wpkLegs.length,
      },
      target: 'p50 < 3x floor, p99 < 25 ms',
      hub_cpu_percent_of_one_core: round(((cpu.user + cpu.system) / 1000 / elapsed) * 100),
      hub_event_loop_delay_p99_ms: round(Math.max(0, loop.percentile(99) / 1e6 - 1), 2),
      hub_event_loop_delay_max_ms: round(Math.max(0, loop.max / 1e6 - 1), 2),
      fleet_cpu_percent_of_one_core: round(((fleet1.cpu_ms - fleet0.cpu_ms) / (fleet1.wall_ms - fleet0.wall_ms)) * 100),
      triggers_published: triggers,
      deliveries_per_trigger: round(deliveries / Math.max(1, triggers), 2),
      broadcast_trigger_deliveries: end.broadcast_trigger_deliveries - fleet0.broadcast_trigger_deliveries,
      drain_after_last_create_ms: round(run.drainMs),
      wpks_json_bytes: wpksBytes,
      wpks_json_stringify_ms: round(stringifyMs, 1),
    };
  } finally {
    await pinger?.endAsync(true);
    await b.stop();
  }
}
