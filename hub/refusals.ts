/**
 * The one place a refusal goes: logged once with its reason, counted by code,
 * and reported to the node on `hub/errors/{node_id}` so a device maker sees
 * why without access to the hub's logs.
 */
import type { Logger } from '../lib/log.js';
import type { Topics } from '../lib/topics.js';
import type { HubError, RefusalCode } from '../lib/wire.js';
import type { HubCounters } from './counters.js';

export interface RefusalReport {
  code: RefusalCode;
  reason: string;
  topic: string;
  nodeId?: string;
  /** Where it came from: `mqtt` or `http`. */
  via: 'mqtt' | 'http';
}

export type PublishFn = (topic: string, payload: string, opts: { qos: 0 | 1; retain: boolean }) => void;

export class Refusals {
  constructor(
    private readonly topics: Topics,
    private readonly counters: HubCounters,
    private readonly log: Logger,
    private readonly publish: PublishFn,
  ) {}

  record(r: RefusalReport): void {
    this.counters.refusals[r.code] = (this.counters.refusals[r.code] ?? 0) + 1;
    this.log.warn({ code: r.code, reason: r.reason, topic: r.topic, node_id: r.nodeId, via: r.via }, 'refused');
    if (r.via !== 'mqtt' || r.nodeId === undefined) return;
    const report: HubError = { code: r.code, reason: r.reason, topic: r.topic.slice(0, 1024), ts: Date.now() };
    if (r.code !== 'invalid_node_id') report.node_id = r.nodeId;
    this.publish(this.topics.hubError(r.nodeId), JSON.stringify(report), { qos: 0, retain: false });
  }
}
