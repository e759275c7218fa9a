/**
 * `GET /metrics`: the hub in the Prometheus text format. Counters and gauges
 * read the hub's own numbers at scrape time; histograms observe the hub's
 * events (dispatch latency, WPK duration, registry writes) as they happen.
 * Names follow Prometheus conventions: `edgefed_` prefix, `_total` counters,
 * base units (`_seconds`, `_bytes`).
 */
import { stat } from 'node:fs/promises';
import { Histogram, Registry } from 'prom-client';
import { VERSION } from '../../lib/version.js';
import type { CountersSnapshot, HubApi } from '../../hub/index.js';
import { NODE_STATES, type NodeState } from '../../hub/registry.js';
import { WPK_STATES } from '../../hub/wpk/types.js';
import { registerBrokerMetrics, type BrokerView } from './broker.js';
import { byLabel, mirrorCounter, mirrorGauge, type Reading } from './mirror.js';
import { processRegistry } from './process.js';

export interface HubMetrics {
  readonly contentType: string;
  /** The exposition text of one scrape. */
  text(): Promise<string>;
  /** Stops observing the hub. */
  close(): void;
}

/** Beyond this many capabilities, the rest share one series (`capability="_other"`): Prometheus dislikes unbounded labels. */
export const MAX_CAPABILITY_SERIES = 500;

/** 0.5 ms to 30 s: a loopback dispatch is sub-millisecond, a congested one seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
const FLUSH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export function createHubMetrics(hub: HubApi, broker?: BrokerView): HubMetrics {
  const registry = new Registry();
  registerInfo(registry, hub);
  registerNodes(registry, hub);
  registerMessages(registry, hub);
  registerWpks(registry, hub);
  registerStore(registry, hub);
  registerDesiredState(registry, hub);
  if (broker) registerBrokerMetrics(registry, broker);
  const unobserve = observeEvents(registry, hub);
  const merged = Registry.merge([processRegistry(), registry]);
  return {
    contentType: merged.contentType,
    text: () => merged.metrics(),
    close: unobserve,
  };
}

function registerInfo(registry: Registry, hub: HubApi): void {
  mirrorGauge(registry, { name: 'edgefed_hub_info', help: 'Always 1; the labels say which hub answers', labelNames: ['version', 'boot_id'], read: () => [[{ version: VERSION, boot_id: hub.bootId }, 1]] });
  mirrorGauge(registry, { name: 'edgefed_hub_broker_connected', help: '1 while the hub\'s MQTT session is up', read: () => (hub.connected ? 1 : 0) });
  mirrorGauge(registry, { name: 'edgefed_hub_start_time_seconds', help: 'When the hub started (Unix time)', read: () => hub.startedAt / 1000 });
}

function registerNodes(registry: Registry, hub: HubApi): void {
  mirrorGauge(registry, {
    name: 'edgefed_nodes', help: 'Nodes in the registry by status', labelNames: ['status'],
    read: () => byLabel('status', hub.countNodesByStatus()),
  });
  mirrorGauge(registry, {
    name: 'edgefed_capability_nodes', help: `Nodes per capability and status (at most ${MAX_CAPABILITY_SERIES} capabilities; the rest as "_other")`, labelNames: ['capability', 'status'],
    read: () => capabilityReading(hub),
  });
  const c = (): CountersSnapshot => hub.counters();
  mirrorCounter(registry, { name: 'edgefed_registrations_total', help: 'Registrations admitted (births, re-announcements, HTTP registrations)', read: () => c().registrations });
  mirrorCounter(registry, { name: 'edgefed_deregistrations_total', help: 'Nodes that left the federation (empty retained registration)', read: () => c().deregistrations });
  mirrorCounter(registry, {
    name: 'edgefed_node_transitions_total', help: 'Nodes that went stale (missed heartbeats) or offline (will or goodbye)', labelNames: ['to'],
    read: () => [[{ to: 'stale' }, c().stale_transitions], [{ to: 'offline' }, c().offline_transitions]],
  });
  mirrorCounter(registry, { name: 'edgefed_rebirths_requested_total', help: 'Rebirth commands sent to nodes the hub heard from but did not know', read: () => c().rebirths_requested });
}

function registerMessages(registry: Registry, hub: HubApi): void {
  const c = (): CountersSnapshot => hub.counters();
  mirrorCounter(registry, {
    name: 'edgefed_messages_received_total', help: 'Node messages the hub admitted, by kind (heartbeat, registration, status, execution)', labelNames: ['kind'],
    read: () => [
      [{ kind: 'registration' }, c().messages.registration], [{ kind: 'status' }, c().messages.status],
      [{ kind: 'heartbeat' }, c().messages.heartbeat], [{ kind: 'execution' }, c().messages.executions],
      [{ kind: 'reported' }, c().messages.reported],
    ],
  });
  mirrorCounter(registry, {
    name: 'edgefed_refusals_total', help: 'Messages and requests refused (logged once, reported on hub/errors), by reason', labelNames: ['reason'],
    read: () => byLabel('reason', c().refusals),
  });
  mirrorCounter(registry, {
    name: 'edgefed_ignored_messages_total', help: 'Valid messages that changed nothing (duplicates, older sessions, unknown nodes...), by reason', labelNames: ['reason'],
    read: () => byLabel('reason', c().ignored),
  });
}

function registerWpks(registry: Registry, hub: HubApi): void {
  const w = (): CountersSnapshot['wpks'] => hub.counters().wpks;
  mirrorGauge(registry, { name: 'edgefed_wpks', help: 'Work packages the hub holds, by state', labelNames: ['state'], read: () => byLabel('state', hub.wpks.countByState()) });
  mirrorGauge(registry, {
    name: 'edgefed_wpk_open_executions', help: 'Executions of the work packages not finished yet, by state (queued: a rollout\'s targets waiting for their turn)', labelNames: ['state'],
    read: () => byLabel('state', hub.wpks.countOpenExecutions()),
  });
  mirrorCounter(registry, { name: 'edgefed_wpks_created_total', help: 'Work packages created', read: () => w().created });
  mirrorCounter(registry, {
    name: 'edgefed_wpks_finished_total', help: 'Work packages that ended, by final state', labelNames: ['state'],
    read: () => WPK_STATES.filter((s) => w().finished[s] !== undefined).map((s) => [{ state: s }, w().finished[s]!]),
  });
  mirrorCounter(registry, { name: 'edgefed_wpk_triggers_total', help: 'Triggers published (a mode-all trigger naming many nodes counts once)', read: () => w().triggers });
  mirrorCounter(registry, { name: 'edgefed_wpk_redispatches_total', help: 'Attempts after the first of a mode-one WPK (failover, re-routing)', read: () => w().redispatches });
  mirrorCounter(registry, { name: 'edgefed_wpk_cancel_commands_total', help: 'Cancel commands sent to nodes', read: () => w().cancel_commands });
}

function registerDesiredState(registry: Registry, hub: HubApi): void {
  const s = () => hub.counters().state;
  mirrorGauge(registry, { name: 'edgefed_nodes_out_of_sync', help: 'Nodes whose reported state lags their desired state (other version, an error, or a delta)', read: () => hub.countOutOfSync() });
  mirrorCounter(registry, { name: 'edgefed_desired_state_changes_total', help: 'Desired-state changes (each raised a node\'s version)', read: () => s().patches });
  mirrorCounter(registry, { name: 'edgefed_desired_state_precondition_failed_total', help: 'Desired-state changes refused because If-Match named another version (412)', read: () => s().precondition_failed });
  mirrorCounter(registry, { name: 'edgefed_reported_state_ignored_total', help: 'Reported states of an older version than recorded, or of a version never desired', read: () => s().ignored_reports });
  mirrorCounter(registry, { name: 'edgefed_desired_state_republished_total', help: 'Retained desired states published again (a broker that lost or changed them)', read: () => s().republished });
}

function registerStore(registry: Registry, hub: HubApi): void {
  mirrorCounter(registry, { name: 'edgefed_registry_flushes_total', help: 'Registry writes to disk', read: () => hub.counters().flushes });
  mirrorCounter(registry, { name: 'edgefed_registry_flush_errors_total', help: 'Registry writes that failed (retried)', read: () => hub.counters().flush_errors });
  mirrorGauge(registry, { name: 'edgefed_store_up', help: 'Whether the store (files or PostgreSQL) takes writes: 1 up, 0 down (the hub then serves from memory and retries)', read: () => (hub.storeStatus().state === 'up' ? 1 : 0) });
  mirrorCounter(registry, { name: 'edgefed_store_failures_total', help: 'Store writes and checks that failed', read: () => hub.storeStatus().failures });
  const file = hub.registryFile;
  if (file === undefined) return;
  mirrorGauge(registry, { name: 'edgefed_registry_size_bytes', help: 'Size of registry.json on disk', read: () => fileSize(file) });
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined; // not written yet
  }
}

function observeEvents(registry: Registry, hub: HubApi): () => void {
  const latency = new Histogram({ name: 'edgefed_wpk_dispatch_latency_seconds', help: 'Trigger published to the node\'s first answer (accepted, running, rejected...)', buckets: LATENCY_BUCKETS, registers: [registry] });
  const duration = new Histogram({ name: 'edgefed_wpk_duration_seconds', help: 'Work package creation to its end, by final state', labelNames: ['state'], buckets: DURATION_BUCKETS, registers: [registry] });
  const flush = new Histogram({ name: 'edgefed_registry_flush_duration_seconds', help: 'Time to write the registry to disk', buckets: FLUSH_BUCKETS, registers: [registry] });
  const o = hub.events;
  const off = [
    o.dispatchAnswered.add((ms) => latency.observe(ms / 1000)),
    o.wpkFinished.add((state, ms) => duration.observe({ state }, ms / 1000)),
    o.registryFlushed.add((ms) => flush.observe(ms / 1000)),
  ];
  return () => { for (const f of off) f(); };
}

function capabilityReading(hub: HubApi): Reading {
  const counts = new Map<string, Record<NodeState, number>>();
  for (const r of hub.eachNode()) {
    for (const cap of r.capabilities) {
      const key = counts.has(cap) || counts.size < MAX_CAPABILITY_SERIES ? cap : '_other';
      let row = counts.get(key);
      if (!row) counts.set(key, (row = { active: 0, stale: 0, offline: 0, deregistered: 0 }));
      row[r.status] += 1;
    }
  }
  const out: Array<[Record<string, string>, number]> = [];
  for (const [capability, row] of counts) for (const status of NODE_STATES) out.push([{ capability, status }, row[status]]);
  return out;
}
