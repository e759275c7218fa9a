/**
 * When the hub stops waiting for an execution in flight: its node is gone,
 * restarted or silent, it never accepted, or it ran past its timeout.
 */
import type { NodeRecord } from '../registry.js';
import type { ExecutionRecord, WpkRecord } from './types.js';

export interface GiveUpRules {
  acceptTimeoutMs: number;
  timeoutGraceMs: number;
  lostAfterRestartMs: number;
  /** When this hub process started: work restored from disk gets its full time again from here. */
  startedAt: number;
}

export interface GiveUp { state: 'lost' | 'timed_out'; reason: string; acceptTimeout?: boolean }

export function whyGiveUp(rules: GiveUpRules, w: WpkRecord, e: ExecutionRecord, node: NodeRecord | undefined, now: number): GiveUp | undefined {
  const lost = lostReason(rules, node, e, now);
  if (lost) return { state: 'lost', reason: lost };
  const since = (t: number) => now - Math.max(t, rules.startedAt);
  if (e.state === 'dispatched' && since(e.dispatched_at) > rules.acceptTimeoutMs) {
    return { state: 'lost', reason: `did not accept within ${rules.acceptTimeoutMs} ms`, acceptTimeout: true };
  }
  if (e.state !== 'dispatched' && since(e.started_at ?? e.dispatched_at) > w.timeout_ms + rules.timeoutGraceMs) {
    return { state: 'timed_out', reason: `exceeded its timeout of ${w.timeout_ms} ms` };
  }
  return undefined;
}

function lostReason(rules: GiveUpRules, node: NodeRecord | undefined, e: ExecutionRecord, now: number): string | undefined {
  if (!node || node.status === 'deregistered') return 'node left the federation';
  if (node.boot_id !== e.boot_id) return 'node restarted (new boot_id)';
  if (node.status === 'offline') return `node went offline (${node.status_reason ?? 'lost'})`;
  if (node.status === 'stale' && node.status_reason === 'no_heartbeat') return 'node stopped sending heartbeats';
  if (node.status === 'stale' && now - rules.startedAt > rules.lostAfterRestartMs) return 'node not heard from since the hub restarted';
  return undefined;
}
