/**
 * The TypeScript types in lib/wire.ts and the JSON Schemas describe the same
 * shapes. The compile-time half is checked by `npm run typecheck` (tsc fails
 * if a type and its schema drift apart); the runtime half below checks the
 * validators accept typed samples and refuse what the types forbid.
 */
import { readFileSync } from 'node:fs';
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type {
  DesiredState, ReportedState,
  Command, ExecutionUpdate, Heartbeat, HttpHeartbeat, HttpRegistration, HttpWpkRequest, HubError, HubStatus, NodeStatus, Registration, WpkTrigger,
} from '../lib/wire.js';
import {
  commandSchema, executionUpdateSchema, heartbeatSchema, httpHeartbeatSchema, httpRegistrationSchema, hubErrorSchema,
  hubStatusSchema, registrationSchema, statusSchema, validators, wpkTriggerSchema, allSchemas, httpWpkRequestSchema,
  desiredStateSchema, reportedStateSchema,
} from '../schemas/index.js';

/** Mutual assignability: every value of one type is a value of the other. */
type Assignable<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** ...and the same field names, so an optional field added on one side only is caught too. */
type Same<A, B> = Assignable<A, B> extends true ? Assignable<keyof A, keyof B> : false;
type Assert<T extends true> = T;
type Mutable<T> = T extends readonly (infer U)[] ? Mutable<U>[] : T extends object ? { -readonly [K in keyof T]: Mutable<T[K]> } : T;
type Schema<S extends JSONSchema> = Mutable<FromSchema<S>>;

export type Agreement = [
  Assert<Same<Schema<typeof registrationSchema>, Registration>>,
  Assert<Same<Schema<typeof statusSchema>, NodeStatus>>,
  Assert<Same<Schema<typeof heartbeatSchema>, Heartbeat>>,
  Assert<Same<Schema<typeof executionUpdateSchema>, ExecutionUpdate>>,
  Assert<Same<Schema<typeof wpkTriggerSchema>, WpkTrigger>>,
  Assert<Same<Schema<typeof commandSchema>, Command>>,
  Assert<Same<Schema<typeof hubStatusSchema>, HubStatus>>,
  Assert<Same<Schema<typeof hubErrorSchema>, HubError>>,
  Assert<Same<Schema<typeof httpRegistrationSchema>, HttpRegistration>>,
  Assert<Same<Schema<typeof httpHeartbeatSchema>, HttpHeartbeat>>,
  Assert<Same<Schema<typeof httpWpkRequestSchema>, HttpWpkRequest>>,
  Assert<Same<Schema<typeof desiredStateSchema>, DesiredState>>,
  Assert<Same<Schema<typeof reportedStateSchema>, ReportedState>>,
];

const test = suite('schemas');
const now = 1_700_000_000_000;

const samples = {
  registration: {
    node_id: 'edge-node-001', endpoint: 'http://edge-node-001:8040', capabilities: ['monitoring', 'basic-actions'],
    labels: { site: 'berlin' }, agent: { name: 'edgefed-agent', version: '0.1.0' }, hardware: { arch: 'arm64', cpus: 4, memory_mb: 2048 },
    heartbeat_interval_ms: 5000, max_concurrency: 4, boot_id: 'V1StGXR8_Z5jdHi6B-myT', ts: now,
  } satisfies Registration,
  status: { state: 'offline', reason: 'lost', boot_id: 'b1', ts: now } satisfies NodeStatus,
  heartbeat: { seq: 17, ts: now, uptime_s: 85, load: 0.42, running_wpks: 1 } satisfies Heartbeat,
  executionUpdate: { wpk_id: 'wpk_1', node_id: 'n1', attempt: 1, state: 'succeeded', ts: now, progress: 1, result: { ok: true } } satisfies ExecutionUpdate,
  wpkTrigger: { wpk_id: 'wpk_1', capability: 'monitoring', action: 'collect-metrics', params: { window: '5m' }, mode: 'one', assignee: 'n1', attempt: 1, created_at: now, deadline: now + 1 } satisfies WpkTrigger,
  command: { command: 'cancel', wpk_id: 'wpk_1', attempt: 1, ts: now } satisfies Command,
  hubStatus: { state: 'online', boot_id: 'h1', ts: now, version: '0.1.0' } satisfies HubStatus,
  hubError: { code: 'schema', reason: 'capabilities: must be array', topic: 'edgefed/v1/nodes/n1/registration', node_id: 'n1', ts: now } satisfies HubError,
  httpRegistration: { node_id: 'edge-node-001', endpoint: 'http://edge-node-001:8040', capabilities: ['monitoring', 'basic-actions'] } satisfies HttpRegistration,
  httpHeartbeat: { load: 0.1 } satisfies HttpHeartbeat,
  desiredState: { version: 3, state: { interval_s: 5, model: { name: 'v3' } }, ts: now } satisfies DesiredState,
  reportedState: { version: 3, state: { interval_s: 5 }, ts: now, error: 'model v3 not found' } satisfies ReportedState,
  httpWpkRequest: { capability: 'monitoring', action: 'collect-metrics', params: { window: '5m' }, mode: 'all', nodes: ['n1'], labels: { site: 'berlin' }, timeout_ms: 30000, deadline: now + 600000, max_attempts: 3 } satisfies HttpWpkRequest,
};

for (const [name, sample] of Object.entries(samples)) {
  test(`${name}: a typed sample is valid`, () => {
    const result = validators[name as keyof typeof validators](sample);
    assert.ok(result.ok, JSON.stringify(result));
  });
  test(`${name}: unknown fields are refused`, () => {
    assert.not.ok(validators[name as keyof typeof validators]({ ...sample, surprise: 1 }).ok);
  });
}

test('the minimal registration of the contract is valid', () => {
  assert.ok(validators.registration({ node_id: 'n', capabilities: ['c'], boot_id: 'b', ts: 0 }).ok);
});

test('every required field of a registration is required', () => {
  for (const field of registrationSchema.required) {
    const copy: Record<string, unknown> = { ...samples.registration };
    delete copy[field];
    const result = validators.registration(copy);
    assert.not.ok(result.ok, field);
    if (!result.ok) assert.match(result.errors.join(), new RegExp(`missing required field "${field}"`));
  }
});

test('ids refuse MQTT wildcards, separators, $ and length over 64', () => {
  for (const bad of ['a/b', 'a+', '#', '$SYS', 'has space', '', '-lead', 'x'.repeat(65)]) {
    assert.not.ok(validators.registration({ ...samples.registration, node_id: bad }).ok, bad);
    assert.not.ok(validators.registration({ ...samples.registration, capabilities: [bad] }).ok, bad);
  }
  assert.ok(validators.registration({ ...samples.registration, node_id: 'x'.repeat(64) }).ok);
});

test('capabilities: 1..32, distinct', () => {
  const caps = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`);
  assert.ok(validators.registration({ ...samples.registration, capabilities: caps(32) }).ok);
  assert.not.ok(validators.registration({ ...samples.registration, capabilities: caps(33) }).ok);
  assert.not.ok(validators.registration({ ...samples.registration, capabilities: [] }).ok);
  assert.not.ok(validators.registration({ ...samples.registration, capabilities: ['a', 'a'] }).ok);
});

test('no type coercion: "5000" is not an interval', () => {
  assert.not.ok(validators.registration({ ...samples.registration, heartbeat_interval_ms: '5000' }).ok);
});

test('a command is a cancel or a rebirth, nothing in between', () => {
  assert.ok(validators.command({ command: 'rebirth', ts: now }).ok);
  assert.not.ok(validators.command({ command: 'rebirth', wpk_id: 'w', ts: now }).ok);
  assert.not.ok(validators.command({ command: 'reboot', ts: now }).ok);
});

test('schemas/json/ (published for device makers) matches the schemas in use', () => {
  for (const [name, schema] of Object.entries(allSchemas)) {
    const published = JSON.parse(readFileSync(new URL(`../schemas/json/${name}.json`, import.meta.url), 'utf8'));
    assert.equal(published, schema, `${name}.json is stale: run npm run schemas:export`);
  }
});

test.run();
