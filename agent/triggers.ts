/**
 * Inbound work-package triggers: parsed by hand (the agent does not load
 * ajv), mirroring `wpkTriggerSchema` in schemas/definitions.ts bound for bound;
 * test/agent-wpk.test.ts checks the two agree. Also the two decisions taken
 * before any work starts: is this trigger meant for this node, and has it
 * been seen already.
 */
import { isValidId } from '../lib/ids.js';
import { MAX_ATTEMPT, MAX_PARAMS, MAX_TARGETS, MAX_TIMEOUT_MS } from '../lib/limits.js';
import type { WpkTrigger } from '../lib/wire.js';
import { parseJsonObject, type Parsed } from './commands.js';

const FIELDS = new Set(['wpk_id', 'capability', 'action', 'params', 'mode', 'assignee', 'targets', 'attempt', 'created_at', 'deadline', 'timeout_ms']);

const isEpochMs = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isIntIn = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** Checks one payload from `wpk/{capability}/trigger`; the reason names the first problem found. */
export function parseTrigger(payload: Buffer): Parsed<WpkTrigger> {
  const obj = parseJsonObject(payload);
  if (!obj.ok) return obj;
  const t = obj.value;
  const unknown = Object.keys(t).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) return fail(`unknown field "${unknown.slice(0, 64)}"`);
  for (const field of ['wpk_id', 'capability', 'action'] as const) {
    if (!isValidId(t[field])) return fail(`${field} must be an id (letters, digits, . _ -; 1-64 chars)`);
  }
  if (t.mode !== 'one' && t.mode !== 'all') return fail('mode must be "one" or "all"');
  if (!isIntIn(t.attempt, 1, MAX_ATTEMPT)) return fail(`attempt must be an integer in 1..${MAX_ATTEMPT}`);
  if (!isEpochMs(t.created_at)) return fail('created_at must be epoch milliseconds');
  if (!isEpochMs(t.deadline)) return fail('deadline must be epoch milliseconds');
  if (t.timeout_ms !== undefined && !isIntIn(t.timeout_ms, 1, MAX_TIMEOUT_MS)) return fail(`timeout_ms must be an integer in 1..${MAX_TIMEOUT_MS}`);
  if (t.params !== undefined && !isParams(t.params)) return fail(`params must be an object of at most ${MAX_PARAMS} properties`);
  if (t.assignee !== undefined && !isValidId(t.assignee)) return fail('assignee must be a node id');
  if (t.targets !== undefined) {
    const problem = targetsProblem(t.targets);
    if (problem) return fail(problem);
  }
  return { ok: true, value: t as unknown as WpkTrigger };
}

function isParams(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length <= MAX_PARAMS;
}

function targetsProblem(targets: unknown): string | undefined {
  if (!Array.isArray(targets) || targets.length < 1 || targets.length > MAX_TARGETS) return `targets must be an array of 1..${MAX_TARGETS} node ids`;
  if (!targets.every(isValidId)) return 'targets must hold node ids only';
  if (new Set(targets).size !== targets.length) return 'targets must be distinct';
  return undefined;
}

function fail(reason: string): Parsed<WpkTrigger> {
  return { ok: false, reason };
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
