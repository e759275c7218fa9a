/**
 * Two per-node timers of the hub's: the grace a node's will waits before it
 * is applied (`willGraceMs`: a node that reconnects at once, as to another
 * broker of a cluster, is not marked offline), and the throttle of `rebirth`
 * commands (at most one per node every `rebirthThrottleMs`).
 */
import type { Publisher } from './context.js';
import type { HubCounters } from './counters.js';
import type { Topics } from '../lib/topics.js';

export class WillGrace {
  /** Wills waiting out the grace, by node. */
  readonly #pending = new Map<string, NodeJS.Timeout>();
  #stopped = false;

  constructor(private readonly graceMs: number) {}

  /** Applies the will after the grace, unless another will of the node replaces it or the hub stops first. */
  defer(nodeId: string, apply: () => void): void {
    clearTimeout(this.#pending.get(nodeId));
    const timer = setTimeout(() => {
      this.#pending.delete(nodeId);
      if (!this.#stopped) apply();
    }, this.graceMs);
    timer.unref();
    this.#pending.set(nodeId, timer);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#pending.values()) clearTimeout(t);
    this.#pending.clear();
  }
}

export class RebirthThrottle {
  readonly #last = new Map<string, number>();

  constructor(private readonly deps: { topics: Topics; out: Publisher; counters: HubCounters; throttleMs: number }) {}

  /** Sends the node a `rebirth` command, unless it got one less than `throttleMs` ago. */
  request(nodeId: string, now = Date.now()): void {
    const last = this.#last.get(nodeId);
    if (last !== undefined && now - last < this.deps.throttleMs) return;
    if (this.#last.size > 100_000) this.#prune(now);
    this.#last.set(nodeId, now);
    this.deps.counters.rebirths_requested += 1;
    this.deps.out.publish(this.deps.topics.commands(nodeId), JSON.stringify({ command: 'rebirth', ts: now }), { qos: 1, retain: false });
  }

  /** Forgets throttle entries that have expired, so the map stays bounded without resetting live ones. */
  #prune(now: number): void {
    for (const [id, at] of this.#last) if (now - at >= this.deps.throttleMs) this.#last.delete(id);
  }
}
