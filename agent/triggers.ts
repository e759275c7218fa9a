/**
 * Inbound work-package triggers: checked by the validator generated from
 * `wpkTriggerSchema` (agent/generated/wpk-trigger.ts), so the agent accepts
 * exactly what the hub may send. Also the two decisions taken before any work
 * starts: is this trigger meant for this node, and has it been seen already.
 */
import type { WpkTrigger } from '../lib/wire.js';
import { checkWpkTrigger } from './generated/wpk-trigger.js';
import { checkPayload, type Parsed } from './commands.js';

/** Checks one payload from `wpk/{capability}/trigger`; the reason names the first problem found. */
export function parseTrigger(payload: Buffer): Parsed<WpkTrigger> {
  return checkPayload(payload, checkWpkTrigger);
}

/**
 * A trigger names who runs it: mode `one` through `assignee`, mode `all`
 * optionally through `targets`. Either field, when present, must name this node.
 */
export function isAddressedTo(trigger: WpkTrigger, nodeId: string): boolean {
  if (trigger.assignee !== undefined && trigger.assignee !== nodeId) return false;
  if (trigger.targets !== undefined && !trigger.targets.includes(nodeId)) return false;
  return true;
}

/** The dedup key of the contract: (`wpk_id`, `attempt`). `#` never occurs in an id. */
export function executionKey(wpkId: string, attempt: number): string {
  return `${wpkId}#${attempt}`;
}

/**
 * The last `capacity` keys seen, oldest forgotten first. A Set iterates in
 * insertion order, so evicting its first key is FIFO without a second structure.
 */
export class RecentKeys {
  private readonly keys = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** Records `key`; false when it was already among the recent ones. */
  add(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.capacity) {
      const oldest = this.keys.values().next().value as string;
      this.keys.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.keys.size;
  }
}
