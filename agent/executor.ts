/**
 * Runs work packages on this node. A trigger passes a list of checks, each
 * its own small function (parse, addressed to us, not seen before, then the
 * refusals: unknown action, deadline passed, busy), and then moves through
 * `accepted` -> `running` -> one final state. Every update goes to `send`
 * (the outbox), which publishes or spools it; the executor never touches MQTT.
 *
 * An execution ends at the first of: its action settles, its `timeout_ms`
 * elapses, the hub cancels it, the agent stops. The last three abort the
 * action's signal and send the final update at once rather than waiting for
 * the action to notice: a stuck action cannot hold a slot or keep the hub
 * waiting, and whatever it does later is ignored.
 */
import type { Logger } from '../lib/log.js';
import { MAX_ERROR_LENGTH, MAX_PARAMS, MAX_PAYLOAD_BYTES } from '../lib/limits.js';
import type { ExecutionState, ExecutionUpdate, WpkTrigger } from '../lib/wire.js';
import type { ActionContext, ActionHandler } from './actions.js';
import { ProgressThrottle } from './progress.js';
import { executionKey, isAddressedTo, parseTrigger, RecentKeys } from './triggers.js';

/** `(wpk_id, attempt)` pairs remembered for deduplication. */
export const DEDUP_CAPACITY = 10_000;
/** The schema's `error` bound. */
export const MAX_ERROR_CHARS = MAX_ERROR_LENGTH;
/** An update larger than the hub's default payload limit would be refused, or get the connection cut by its broker. */
export const MAX_UPDATE_BYTES = MAX_PAYLOAD_BYTES;

export const CANCELED_BY_HUB = 'canceled by the hub';
export const AGENT_STOPPED = 'agent stopped';

export interface ExecutorOptions {
  nodeId: string;
  actions: ReadonlyMap<string, ActionHandler>;
  /** Executions at once; a trigger beyond it is rejected `busy`. */
  concurrency: number;
  log: Logger;
  send: (update: ExecutionUpdate) => void;
  progressIntervalMs?: number;
}

interface Execution {
  readonly key: string;
  readonly trigger: WpkTrigger;
  readonly controller: AbortController;
  readonly log: Logger;
  readonly progress: ProgressThrottle;
  readonly startedAt: number;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

type Final = { state: Extract<ExecutionState, 'succeeded' | 'failed' | 'timed_out'>; result?: Record<string, unknown>; error?: string };

export class Executor {
  private readonly running = new Map<string, Execution>();
  private readonly seen = new RecentKeys(DEDUP_CAPACITY);
  private stopped = false;

  constructor(private readonly opts: ExecutorOptions) {}

  /** Executions not yet in a final state: the heartbeat's `running_wpks`. */
  get runningCount(): number {
    return this.running.size;
  }

  /** Handles one message of `wpk/{capability}/trigger[/{node_id}]`. Never throws. */
  onTrigger(capability: string, payload: Buffer): void {
    if (this.stopped) return;
    const parsed = parseTrigger(payload);
    if (!parsed.ok) {
      this.opts.log.warn({ capability, reason: parsed.reason }, 'ignoring malformed work-package trigger');
      return;
    }
    const trigger = parsed.value;
    if (trigger.capability !== capability) {
      this.opts.log.warn({ capability, wpk_id: trigger.wpk_id, reason: `capability "${trigger.capability}" differs from its topic's` }, 'ignoring malformed work-package trigger');
      return;
    }
    // A broadcast may name other nodes in `targets`; ignoring it is routine, so no log here.
    if (!isAddressedTo(trigger, this.opts.nodeId)) return;
    if (!this.seen.add(executionKey(trigger.wpk_id, trigger.attempt))) {
      this.opts.log.debug({ wpk_id: trigger.wpk_id, attempt: trigger.attempt }, 'duplicate trigger ignored');
      return;
    }
    const refusal = this.refusal(trigger);
    if (refusal !== undefined) {
      this.opts.log.info({ wpk_id: trigger.wpk_id, attempt: trigger.attempt, action: trigger.action, reason: refusal }, 'work package rejected');
      this.opts.send(this.update(trigger, 'rejected', { error: refusal }));
      return;
    }
    this.start(trigger);
  }

  /**
   * A `running` update of every execution still running, stamped with its
   * start: for a restarted hub whose file may still say `dispatched` (it died
   * before writing the `accepted`/`running` it had received), which would give
   * the attempt up after its accept timeout and run the work again elsewhere.
   */
  runningUpdates(): ExecutionUpdate[] {
    const wallOffset = Date.now() - performance.now();
    return [...this.running.values()].map((e) => ({ ...this.update(e.trigger, 'running'), ts: Math.round(wallOffset + e.startedAt) }));
  }

  /** The hub's `cancel` command. Returns whether that execution was running here. */
  cancel(wpkId: string, attempt: number): boolean {
    const execution = this.running.get(executionKey(wpkId, attempt));
    if (!execution) {
      this.opts.log.debug({ command: 'cancel', wpk_id: wpkId, attempt }, 'cancel for an execution this agent does not handle (not running here)');
      return false;
    }
    execution.log.info('canceled by the hub');
    this.abort(execution, { state: 'failed', error: CANCELED_BY_HUB }, new DOMException(CANCELED_BY_HUB, 'AbortError'));
    return true;
  }

  /**
   * The agent is stopping: refuse new triggers, abort what runs and report it
   * `failed` ("agent stopped") rather than leave the hub to infer it from the
   * node's disappearance. Connected, the hub learns it before the node's
   * offline status; offline, the update is spooled and (with a spool dir)
   * reaches the hub on the next start. Returns how many were aborted.
   */
  stop(): number {
    this.stopped = true;
    const all = [...this.running.values()];
    for (const execution of all) this.abort(execution, { state: 'failed', error: AGENT_STOPPED }, new DOMException(AGENT_STOPPED, 'AbortError'));
    return all.length;
  }

  /** Why this trigger is refused, or undefined. Permanent reasons first: retrying elsewhere will not help with those. */
  private refusal(trigger: WpkTrigger): string | undefined {
    if (!this.opts.actions.has(trigger.action)) {
      // Cut like any error: a node with hundreds of actions must still send a valid update.
      return `unknown action "${trigger.action}"; this agent runs: ${[...this.opts.actions.keys()].join(', ')}`.slice(0, MAX_ERROR_CHARS);
    }
    const now = Date.now();
    if (trigger.deadline <= now) return `deadline passed ${now - trigger.deadline} ms ago`;
    if (this.running.size >= this.opts.concurrency) {
      return `busy: ${this.running.size} of ${this.opts.concurrency} work packages running`;
    }
    return undefined;
  }

  private start(trigger: WpkTrigger): void {
    const key = executionKey(trigger.wpk_id, trigger.attempt);
    const log = this.opts.log.child({ wpk_id: trigger.wpk_id, attempt: trigger.attempt });
    const execution: Execution = {
      key,
      trigger,
      controller: new AbortController(),
      log,
      progress: new ProgressThrottle((progress) => this.opts.send(this.update(trigger, 'running', { progress })), this.opts.progressIntervalMs),
      startedAt: performance.now(),
      timer: undefined,
      done: false,
    };
    this.running.set(key, execution);
    this.opts.send(this.update(trigger, 'accepted'));
    log.info({ action: trigger.action }, 'work package accepted');
    if (trigger.timeout_ms !== undefined) this.armTimeout(execution, trigger.timeout_ms);
    this.opts.send(this.update(trigger, 'running'));
    this.invoke(execution).then(
      (value) => this.settle(execution, () => succeeded(value)),
      (err: unknown) => this.settle(execution, () => ({ state: 'failed', error: errorText(err) })),
    );
  }

  /** Calls the action; a synchronous throw becomes a rejection like an async one. */
  private invoke(execution: Execution): Promise<unknown> {
    const { trigger } = execution;
    const handler = this.opts.actions.get(trigger.action)!;
    const ctx: ActionContext = {
      signal: execution.controller.signal,
      progress: (fraction) => {
        if (!execution.done) execution.progress.report(fraction);
      },
      log: execution.log,
      wpkId: trigger.wpk_id,
      attempt: trigger.attempt,
      nodeId: this.opts.nodeId,
    };
    try {
      return Promise.resolve(handler(trigger.params ?? {}, ctx));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private armTimeout(execution: Execution, ms: number): void {
    const message = `timed out after ${ms} ms`;
    execution.timer = setTimeout(() => this.abort(execution, { state: 'timed_out', error: message }, new DOMException(message, 'TimeoutError')), ms);
    // The MQTT connection keeps an agent alive; a timeout must never hold a stopped one open.
    execution.timer.unref();
  }

  /** The action settled: report it, unless the execution already ended (timeout, cancel, stop). */
  private settle(execution: Execution, outcome: () => Final): void {
    if (execution.done) {
      execution.log.debug('action settled after its execution had ended; outcome ignored');
      return;
    }
    this.finish(execution, outcome());
  }

  /** Ends an execution from outside the action: the signal fires first, then the final update goes out. */
  private abort(execution: Execution, final: Final, reason: DOMException): void {
    if (execution.done) return;
    execution.done = true; // before abort(): listeners run synchronously and may settle the action
    execution.controller.abort(reason);
    this.finish(execution, final);
  }

  private finish(execution: Execution, final: Final): void {
    execution.done = true;
    clearTimeout(execution.timer);
    execution.progress.cancel();
    this.running.delete(execution.key);
    let update = this.update(execution.trigger, final.state, { result: final.result, error: final.error });
    const bytes = Buffer.byteLength(JSON.stringify(update));
    if (bytes > MAX_UPDATE_BYTES) {
      update = this.update(execution.trigger, 'failed', { error: `result too large: the update would be ${bytes} bytes, at most ${MAX_UPDATE_BYTES} are allowed` });
    }
    const ms = Math.round(performance.now() - execution.startedAt);
    execution.log.info({ state: update.state, duration_ms: ms, ...(update.error ? { error: update.error } : {}) }, 'work package finished');
    this.opts.send(update);
  }

  private update(trigger: WpkTrigger, state: ExecutionState, extra: Partial<Pick<ExecutionUpdate, 'progress' | 'result' | 'error'>> = {}): ExecutionUpdate {
    const update: ExecutionUpdate = { wpk_id: trigger.wpk_id, node_id: this.opts.nodeId, attempt: trigger.attempt, state, ts: Date.now() };
    if (extra.progress !== undefined) update.progress = extra.progress;
    if (extra.result !== undefined) update.result = extra.result;
    if (extra.error !== undefined) update.error = extra.error;
    return update;
  }
}

/**
 * The `result` of a `succeeded` update: a JSON object. Plain JSON round trip
 * first (what goes on the wire anyway), so Dates, class instances and
 * `toJSON` are judged by what they serialise to.
 */
function succeeded(value: unknown): Final {
  if (value === undefined) return { state: 'succeeded', result: {} };
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    return { state: 'failed', error: errorText(new Error(`the action's result is not JSON: ${errorText(err)}`)) };
  }
  if (json === undefined) return { state: 'succeeded', result: {} }; // a function or symbol: nothing to report
  const plain: unknown = JSON.parse(json);
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) return { state: 'succeeded', result: { value: plain } };
  const size = Object.keys(plain).length;
  if (size > MAX_PARAMS) return { state: 'failed', error: `the action's result has ${size} properties; at most ${MAX_PARAMS} are allowed` };
  return { state: 'succeeded', result: plain as Record<string, unknown> };
}

/** The thrown message, cut to the schema's bound. */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? err.message || err.name : typeof err === 'string' ? err : safeString(err);
  return (text === '' ? 'action failed' : text).slice(0, MAX_ERROR_CHARS);
}

function safeString(value: unknown): string {
  try {
    return typeof value === 'object' && value !== null ? JSON.stringify(value) ?? String(value) : String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
