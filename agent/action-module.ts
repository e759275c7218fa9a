/**
 * Loading user actions from a module file (`edgefed agent --actions ./my-actions.js`).
 * The module exports its actions as named exports, as a default object, or
 * both: `export async function collect(params, ctx) {...}` or
 * `export default { 'collect-metrics': async (params, ctx) => ... }`. Action
 * names are ids like every other name on the wire, which is why a default
 * object is allowed: `collect-metrics` is not a JavaScript identifier.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isValidId } from '../lib/ids.js';
import type { ActionHandler, ActionMap } from './actions.js';
import { EdgefedError } from '../lib/errors.js';

export class ActionModuleError extends EdgefedError {
  override readonly name = 'ActionModuleError';
  constructor(readonly file: string, readonly problems: string[]) {
    super('EDGEFED_ERR_ACTIONS', `${file}: ${problems.join('; ')}`);
  }
}

/** Imports `file` (relative to `cwd`) and returns its actions; throws ActionModuleError listing every problem. */
export async function loadActionModule(file: string, cwd: string = process.cwd()): Promise<ActionMap> {
  const absolute = path.resolve(cwd, file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ActionModuleError(file, [`cannot be loaded (${message.split('\n')[0]})`]);
  }
  return actionsOf(file, mod);
}

/** Collects and checks the actions a module namespace exports. */
export function actionsOf(file: string, mod: Record<string, unknown>): ActionMap {
  const problems: string[] = [];
  const fromDefault = defaultActions(mod.default, problems);
  const named = Object.entries(mod).filter(([name]) => name !== 'default' && !(name === 'module.exports'));
  const entries = [...Object.entries(fromDefault), ...named];
  const actions: ActionMap = {};
  for (const [name, value] of entries) {
    if (!isValidId(name)) problems.push(`action name "${String(name).slice(0, 64)}" is not an id (letters, digits, . _ -; 1-64 chars, starting with a letter or digit)`);
    else if (typeof value !== 'function') problems.push(`"${name}" is not a function (an action is (params, ctx) => result)`);
    else if (actions[name] !== undefined && actions[name] !== value) problems.push(`"${name}" is exported twice with different functions`);
    else actions[name] = value as ActionHandler;
  }
  if (problems.length === 0 && Object.keys(actions).length === 0) {
    problems.push('exports no actions (export functions by name, or a default object of them)');
  }
  if (problems.length > 0) throw new ActionModuleError(file, problems);
  return actions;
}

function defaultActions(value: unknown, problems: string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  problems.push('the default export must be an object of actions ({ name: async (params, ctx) => result })');
  return {};
}
