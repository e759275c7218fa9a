/**
 * Compiles every schema once (ajv, 2020-12, strict, no type coercion) and
 * exposes typed validators that return readable reasons.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type {
  Command, ExecutionUpdate, Heartbeat, HttpHeartbeat, HttpRegistration, HubError, HubStatus,
  NodeStatus, Registration, WpkTrigger, HttpWpkRequest,
} from '../lib/wire.js';
import {
  allSchemas, commandSchema, executionUpdateSchema, heartbeatSchema, httpHeartbeatSchema,
  httpRegistrationSchema, hubErrorSchema, hubStatusSchema, registrationSchema, statusSchema,
  wpkTriggerSchema, httpWpkRequestSchema,
} from './definitions.js';

export * from './definitions.js';

export type Validation<T> = { ok: true; value: T } | { ok: false; errors: string[] };
export type Validator<T> = (value: unknown) => Validation<T>;

const ajv = new Ajv2020({ strict: true, coerceTypes: false, allErrors: true, useDefaults: false });

function compile<T>(schema: object): Validator<T> {
  const check: ValidateFunction = ajv.compile(schema);
  return (value) => (check(value) ? { ok: true, value: value as T } : { ok: false, errors: describe(check.errors) });
}

/** Turns ajv errors into short sentences a device maker can act on. */
export function describe(errors: ErrorObject[] | null | undefined): string[] {
  if (!errors || errors.length === 0) return ['invalid'];
  return errors.slice(0, 10).map((e) => {
    const where = e.instancePath === '' ? 'payload' : e.instancePath.slice(1).replace(/\//g, '.');
    if (e.keyword === 'additionalProperties') return `${where}: unknown field "${String(e.params.additionalProperty).slice(0, 64)}"`;
    if (e.keyword === 'required') return `${where}: missing required field "${String(e.params.missingProperty)}"`;
    if (e.keyword === 'pattern') return `${where}: ${e.message ?? 'bad format'} (letters, digits, . _ - only; 1-64 chars, starting with a letter or digit)`;
    return `${where}: ${e.message ?? e.keyword}`;
  });
}

export const validators = {
  registration: compile<Registration>(registrationSchema),
  status: compile<NodeStatus>(statusSchema),
  heartbeat: compile<Heartbeat>(heartbeatSchema),
  executionUpdate: compile<ExecutionUpdate>(executionUpdateSchema),
  wpkTrigger: compile<WpkTrigger>(wpkTriggerSchema),
  command: compile<Command>(commandSchema),
  hubStatus: compile<HubStatus>(hubStatusSchema),
  hubError: compile<HubError>(hubErrorSchema),
  httpRegistration: compile<HttpRegistration>(httpRegistrationSchema),
  httpHeartbeat: compile<HttpHeartbeat>(httpHeartbeatSchema),
  httpWpkRequest: compile<HttpWpkRequest>(httpWpkRequestSchema),
} as const;

export const schemaNames = Object.keys(allSchemas) as Array<keyof typeof allSchemas>;
