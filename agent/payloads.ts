/**
 * Builders for what the agent publishes. Pure apart from reading the host's
 * static facts once, so the wire shapes can be checked against the schemas in
 * isolation.
 */
import os from 'node:os';
import type { HardwareInfo, Heartbeat, NodeStatus, Registration } from '../lib/wire.js';
import type { ResolvedAgentOptions } from './options.js';
import { VERSION } from '../lib/version.js';

export const AGENT_NAME = 'edgefed-agent';

/** Facts that do not change while the process runs. */
export function hostHardware(): Required<HardwareInfo> {
  // availableParallelism honours cgroup/affinity limits; os.cpus() can even be empty in some containers.
  const cpus = Math.max(1, os.availableParallelism());
  return { arch: os.arch(), cpus, memory_mb: Math.round(os.totalmem() / 1_048_576) };
}

export function registrationPayload(
  opts: ResolvedAgentOptions,
  bootId: string,
  hardware: HardwareInfo,
  ts: number,
): Registration {
  const reg: Registration = {
    node_id: opts.nodeId,
    capabilities: [...opts.capabilities],
    boot_id: bootId,
    ts,
    labels: { ...opts.labels },
    agent: { name: AGENT_NAME, version: VERSION },
    hardware,
    heartbeat_interval_ms: opts.heartbeatIntervalMs,
    max_concurrency: opts.concurrency,
  };
  if (opts.endpoint !== undefined) reg.endpoint = opts.endpoint;
  return reg;
}

export function onlineStatus(bootId: string, ts: number, session?: number): NodeStatus {
  return { state: 'online', boot_id: bootId, ts, ...(session !== undefined ? { session } : {}) };
}

/** `lost` is the Last Will (published by the broker), `shutdown` the agent's own goodbye. */
export function offlineStatus(bootId: string, reason: 'lost' | 'shutdown', ts: number, session?: number): NodeStatus {
  return { state: 'offline', reason, boot_id: bootId, ts, ...(session !== undefined ? { session } : {}) };
}

export interface HeartbeatInputs {
  seq: number;
  ts: number;
  startedAt: number;
  cpus: number;
  runningWpks: number;
}

export function heartbeatPayload(i: HeartbeatInputs): Heartbeat {
  // loadavg is always [0,0,0] on Windows; the hub treats load as advisory anyway.
  const load = (os.loadavg()[0] ?? 0) / i.cpus;
  return {
    seq: i.seq,
    ts: i.ts,
    uptime_s: Math.max(0, Math.floor((i.ts - i.startedAt) / 1000)),
    load: Math.round(load * 100) / 100,
    running_wpks: i.runningWpks,
  };
}

/** Heartbeat period with ±10% jitter so a fleet started together does not beat in lockstep. */
export function jitteredInterval(intervalMs: number, random: () => number = Math.random): number {
  return Math.round(intervalMs * (0.9 + 0.2 * random()));
}
