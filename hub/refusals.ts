/**
 * The one place a refusal goes: logged once with its reason, counted by code,
 * and reported to the node on `hub/errors/{node_id}` so a device maker sees
 * why without access to the hub's logs.
 */
import { MAX_ERROR_LENGTH, MAX_TOPIC_LENGTH } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import type { Topics } from '../lib/topics.js';
import type { HubError, RefusalCode } from '../lib/wire.js';
import type { HubCounters } from './counters.js';

export interface RefusalReport {
  code: RefusalCode;
  reason: string;
  /** The MQTT topic, or `METHOD /path` for an HTTP request. */
  topic: string;
  nodeId?: string;
  /** Where it came from: `mqtt` or `http`. */
  via: 'mqtt' | 'http';
}

/** Bounds of the hub-error schema. */
const MAX_REASON = MAX_ERROR_LENGTH;
const MAX_TOPIC = MAX_TOPIC_LENGTH;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export type PublishFn = (topic: string, payload: string, opts: { qos: 0 | 1; retain: boolean }) => void;

export class Refusals {
  constructor(
    private readonly topics: Topics,
    private readonly counters: HubCounters,
    private readonly log: Logger,
    private readonly publish: PublishFn,
  ) {}

  record(report: RefusalReport): void {
    // Reasons quote untrusted input (unknown field names, ids): bound what is logged and published.
    const r = { ...report, reason: clip(report.reason, MAX_REASON), topic: clip(report.topic, MAX_TOPIC) };
    this.counters.refusals[r.code] = (this.counters.refusals[r.code] ?? 0) + 1;
    this.log.warn({ code: r.code, reason: r.reason, topic: r.topic, node_id: r.nodeId, via: r.via }, 'refused');
    if (r.via !== 'mqtt' || r.nodeId === undefined) return;
    const error: HubError = { code: r.code, reason: r.reason, topic: r.topic, ts: Date.now() };
    if (r.code !== 'invalid_node_id') error.node_id = r.nodeId;
    this.publish(this.topics.hubError(r.nodeId), JSON.stringify(error), { qos: 0, retain: false });
  }
}
