/**
 * Loading a desired-state handler from a module file (`edgefed agent
 * --state-handler ./apply.js`): the module's default export, or a named
 * export `onDesired`, is `(state, delta, ctx) => reported`.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EdgefedError } from '../lib/errors.js';
import type { DesiredHandler } from './desired.js';

export class StateHandlerModuleError extends EdgefedError {
  override readonly name = 'StateHandlerModuleError';
  constructor(readonly file: string, problem: string) {
    super('EDGEFED_ERR_STATE_HANDLER', `${file}: ${problem}`);
  }
}

export async function loadStateHandler(file: string, cwd: string = process.cwd()): Promise<DesiredHandler> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path.resolve(cwd, file)).href)) as Record<string, unknown>;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new StateHandlerModuleError(file, `cannot be loaded (${message.split('\n')[0]})`);
  }
  const handler = mod.default ?? mod.onDesired;
  if (typeof handler !== 'function') {
    throw new StateHandlerModuleError(file, 'must export a function as default (or as "onDesired"): (state, delta, ctx) => reported');
  }
  return handler as DesiredHandler;
}
