/**
 * Compiles every schema once (ajv, 2020-12, strict, no type coercion) and
 * exposes typed validators that return readable reasons.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { describe } from '../lib/schema-errors.js';
import type {
  Command, ExecutionUpdate, Heartbeat, HttpHeartbeat, HttpRegistration, HubError, HubStatus,
  NodeStatus, Registration, WpkTrigger, HttpWpkRequest, DesiredState, ReportedState,
} from '../lib/wire.js';
import {
  allSchemas, commandSchema, executionUpdateSchema, heartbeatSchema, httpHeartbeatSchema,
  httpRegistrationSchema, hubErrorSchema, hubStatusSchema, registrationSchema, statusSchema,
  wpkTriggerSchema, httpWpkRequestSchema, desiredStateSchema, reportedStateSchema, apiWpkSchema,
} from './definitions.js';
import type { ApiWpk } from '../lib/api.js';

export * from './definitions.js';
/** Turns ajv errors into short sentences a device maker can act on. */
export { describe } from '../lib/schema-errors.js';

export type Validation<T> = { ok: true; value: T } | { ok: false; errors: string[] };
export type Validator<T> = (value: unknown) => Validation<T>;

const ajv = new Ajv2020({ strict: true, coerceTypes: false, allErrors: true, useDefaults: false });

function compile<T>(schema: object): Validator<T> {
  const check: ValidateFunction = ajv.compile(schema);
  return (value) => (check(value) ? { ok: true, value: value as T } : { ok: false, errors: describe(check.errors) });
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
  desiredState: compile<DesiredState>(desiredStateSchema),
  reportedState: compile<ReportedState>(reportedStateSchema),
  /** An answer, not an input: for tests and for clients that check what the hub sends. */
  apiWpk: compile<ApiWpk>(apiWpkSchema),
} as const;

export const schemaNames = Object.keys(allSchemas) as Array<keyof typeof allSchemas>;
