/**
 * Actions: what a work package runs. A trigger names an action; the agent
 * looks it up here and calls it with the trigger's params. Two are built in
 * (`echo`, `sleep`); users add their own through `AgentOptions.actions` or the
 * CLI's `--actions` module (see action-module.ts).
 */
import type { Logger } from '../lib/log.js';

/** A trigger's `params`: a JSON object (at most MAX_PARAMS properties on the wire, lib/limits.ts). */
export type ActionParams = { [key: string]: unknown };

/** What an action gets besides its params. */
export interface ActionContext {
  /**
   * Fires when the execution must stop: the hub canceled it, its `timeout_ms`
   * elapsed, or the agent is stopping. `signal.reason` says which. The final
   * update is sent at that moment; whatever the action does afterwards is
   * ignored, so an action should stop its work promptly.
   */
  readonly signal: AbortSignal;
  /** Reports progress in 0..1; sent as a `running` update, at most one every 250 ms. */
  progress(fraction: number): void;
  /** The agent's logger, bound to this execution (wpk_id, attempt). */
  readonly log: Logger;
  readonly wpkId: string;
  readonly attempt: number;
  readonly nodeId: string;
}

/**
 * Runs one work package. The resolved value becomes the `result` of the
 * `succeeded` update: an object as is, `undefined` as `{}`, anything else as
 * `{ value: x }`. A throw (or rejection) ends it `failed` with the message.
 */
export type ActionHandler = (params: ActionParams, ctx: ActionContext) => Promise<unknown> | unknown;

/** Actions by name; names follow the id rule (`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`). */
export type ActionMap = Record<string, ActionHandler>;

/** The longest `sleep` accepted: one day. */
export const MAX_SLEEP_MS = 86_400_000;

/** Succeeds with its params: the smallest end-to-end check that a node runs work. */
export const echo: ActionHandler = (params) => params;

/** `{"ms": N}`: waits N ms (0..86,400,000), or until the execution's signal fires. */
export const sleep: ActionHandler = (params, ctx) => {
  const ms = params.ms;
  if (!Number.isInteger(ms) || (ms as number) < 0 || (ms as number) > MAX_SLEEP_MS) {
    throw new Error(`sleep needs params.ms, an integer in 0..${MAX_SLEEP_MS}, got ${JSON.stringify(ms) ?? 'nothing'}`);
  }
  return abortableDelay(ms as number, ctx.signal).then(() => ({ slept_ms: ms }));
};

/** The built-ins, in the order error messages list them. */
export const BUILTIN_ACTIONS: Readonly<ActionMap> = Object.freeze({ echo, sleep });

/** Built-ins first, then the user's (a user action may replace a built-in of the same name). */
export function actionTable(user: ActionMap | undefined): ReadonlyMap<string, ActionHandler> {
  return new Map(Object.entries({ ...BUILTIN_ACTIONS, ...user }));
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it fires. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
