/**
 * Schema errors as short sentences a device maker can act on. One wording for
 * the hub (ajv compiled at start, schemas/index.ts) and the agent (ajv's
 * standalone code, agent/generated/). No dependencies: the agent
 * loads this module, and must not load ajv.
 */
import { MAX_ID_LENGTH } from './limits.js';

/** What this module reads of an ajv `ErrorObject` (which is assignable to it). */
export interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Up to `max` problems, each naming the field (`payload` for the object itself). */
export function describe(errors: readonly SchemaError[] | null | undefined, max = 10): string[] {
  if (!errors || errors.length === 0) return ['invalid'];
  return errors.slice(0, max).map((e) => {
    const where = e.instancePath === '' ? 'payload' : e.instancePath.slice(1).replace(/\//g, '.');
    if (e.keyword === 'additionalProperties') return `${where}: unknown field "${String(e.params.additionalProperty).slice(0, 64)}"`;
    if (e.keyword === 'required') return `${where}: missing required field "${String(e.params.missingProperty)}"`;
    if (e.keyword === 'pattern') return `${where}: ${e.message ?? 'bad format'} (letters, digits, . _ - only; 1-${MAX_ID_LENGTH} chars, starting with a letter or digit)`;
    return `${where}: ${e.message ?? e.keyword}`;
  });
}
