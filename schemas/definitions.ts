/**
 * JSON Schemas (2020-12) of every payload of the wire contract: the single
 * source of truth for what is valid. Every string, array and map is bounded so
 * that untrusted input has a known maximum cost. Kept as `as const` objects so
 * the TypeScript types in lib/wire.ts can be checked against them at compile
 * time; `npm run schemas:export` writes them as plain .json files to
 * schemas/json/ for device makers (a test fails when those are stale).
 */
import { ID_PATTERN_SOURCE } from '../lib/ids.js';
import {
  MAX_ATTEMPT, MAX_ATTEMPTS, MAX_BOOT_ID_LENGTH, MAX_CAPABILITIES, MAX_CONCURRENCY, MAX_CPUS, MAX_ENDPOINT_LENGTH,
  MAX_ERROR_LENGTH, MAX_HEARTBEAT_INTERVAL_MS, MAX_ID_LENGTH, MAX_LABEL_VALUE_LENGTH, MAX_LABELS, MAX_LOAD,
  MAX_MEMORY_MB, MAX_PARAMS, MAX_SHORT_TEXT_LENGTH, MAX_TARGETS, MAX_TIMEOUT_MS, MAX_TOPIC_LENGTH, MAX_UPTIME_S,
  MIN_HEARTBEAT_INTERVAL_MS, MAX_STATE_VERSION,
} from '../lib/limits.js';

export { MAX_TARGETS } from '../lib/limits.js';

const DIALECT = 'https://json-schema.org/draft/2020-12/schema';
const BASE = 'https://edgefed.dev/schemas/v1';

const id = { type: 'string', pattern: ID_PATTERN_SOURCE, maxLength: MAX_ID_LENGTH } as const;
const epochMs = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const bootId = { type: 'string', pattern: `^[A-Za-z0-9_-]{1,${MAX_BOOT_ID_LENGTH}}$` } as const;
const shortText = { type: 'string', minLength: 1, maxLength: MAX_SHORT_TEXT_LENGTH } as const;
const capabilities = {
  type: 'array', items: id, minItems: 1, maxItems: MAX_CAPABILITIES, uniqueItems: true,
} as const;
const labels = {
  type: 'object',
  maxProperties: MAX_LABELS,
  propertyNames: { pattern: ID_PATTERN_SOURCE, maxLength: MAX_ID_LENGTH },
  additionalProperties: { type: 'string', maxLength: MAX_LABEL_VALUE_LENGTH },
} as const;
const agentInfo = {
  type: 'object',
  required: ['name', 'version'],
  additionalProperties: false,
  properties: { name: shortText, version: shortText },
} as const;
const hardware = {
  type: 'object',
  additionalProperties: false,
  properties: {
    arch: shortText,
    cpus: { type: 'integer', minimum: 1, maximum: MAX_CPUS },
    memory_mb: { type: 'integer', minimum: 0, maximum: MAX_MEMORY_MB },
  },
} as const;
const nodeDescription = {
  endpoint: { type: 'string', minLength: 1, maxLength: MAX_ENDPOINT_LENGTH },
  labels,
  agent: agentInfo,
  hardware,
  heartbeat_interval_ms: { type: 'integer', minimum: MIN_HEARTBEAT_INTERVAL_MS, maximum: MAX_HEARTBEAT_INTERVAL_MS },
  max_concurrency: { type: 'integer', minimum: 1, maximum: MAX_CONCURRENCY },
} as const;
const params = { type: 'object', maxProperties: MAX_PARAMS } as const;
const timeoutMs = { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS } as const;
const attempt = { type: 'integer', minimum: 1, maximum: MAX_ATTEMPT } as const;
/** Dispatches per minute: at most 1,000 a second, as the hub's sweep can spread them. */
const perMinute = { type: 'integer', minimum: 1, maximum: 60_000 } as const;
/** Which combinations are valid (a fixed rate or a ramp) the hub checks, with a message saying what to send. */
const rollout = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_per_minute: perMinute,
    base_per_minute: perMinute,
    factor: { type: 'number', exclusiveMinimum: 1, maximum: 100 },
    every_succeeded: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    order_label: id,
  },
} as const;
const abortCriterion = {
  type: 'object',
  required: ['on', 'min_executed', 'threshold_pct'],
  additionalProperties: false,
  properties: {
    on: { type: 'string', enum: ['failed', 'rejected', 'timed_out', 'any'] },
    min_executed: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    threshold_pct: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
  },
} as const;

export const registrationSchema = {
  $schema: DIALECT,
  $id: `${BASE}/registration.json`,
  title: 'Node registration (retained)',
  type: 'object',
  required: ['node_id', 'capabilities', 'boot_id', 'ts'],
  additionalProperties: false,
  properties: { node_id: id, capabilities, boot_id: bootId, ts: epochMs, ...nodeDescription },
} as const;

const presence = {
  state: { type: 'string', enum: ['online', 'offline'] },
  reason: { type: 'string', enum: ['lost', 'shutdown'] },
  boot_id: bootId,
  ts: epochMs,
} as const;

export const statusSchema = {
  $schema: DIALECT,
  $id: `${BASE}/status.json`,
  title: 'Node status (retained; offline/lost is the Last Will)',
  type: 'object',
  required: ['state', 'boot_id', 'ts'],
  additionalProperties: false,
  // session: the connection within the boot (will and online of one CONNECT carry the same).
  properties: { ...presence, session: { type: 'integer', minimum: 1, maximum: 2147483647 } },
} as const;

export const heartbeatSchema = {
  $schema: DIALECT,
  $id: `${BASE}/heartbeat.json`,
  title: 'Node heartbeat',
  type: 'object',
  required: ['seq', 'ts'],
  additionalProperties: false,
  properties: {
    seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    ts: epochMs,
    uptime_s: { type: 'number', minimum: 0, maximum: MAX_UPTIME_S },
    load: { type: 'number', minimum: 0, maximum: MAX_LOAD },
    running_wpks: { type: 'integer', minimum: 0, maximum: MAX_CONCURRENCY },
  },
} as const;

export const executionUpdateSchema = {
  $schema: DIALECT,
  $id: `${BASE}/execution-update.json`,
  title: 'Execution update of a work package on a node',
  type: 'object',
  required: ['wpk_id', 'node_id', 'attempt', 'state', 'ts'],
  additionalProperties: false,
  properties: {
    wpk_id: id,
    node_id: id,
    attempt,
    state: { type: 'string', enum: ['accepted', 'running', 'succeeded', 'failed', 'rejected', 'timed_out'] },
    ts: epochMs,
    progress: { type: 'number', minimum: 0, maximum: 1 },
    result: params,
    error: { type: 'string', maxLength: MAX_ERROR_LENGTH },
  },
} as const;

export const wpkTriggerSchema = {
  $schema: DIALECT,
  $id: `${BASE}/wpk-trigger.json`,
  title: 'Work package trigger (hub only)',
  type: 'object',
  required: ['wpk_id', 'capability', 'action', 'mode', 'attempt', 'created_at', 'deadline'],
  additionalProperties: false,
  properties: {
    wpk_id: id,
    capability: id,
    action: id,
    params,
    mode: { type: 'string', enum: ['one', 'all'] },
    assignee: id,
    targets: { type: 'array', items: id, minItems: 1, maxItems: MAX_TARGETS, uniqueItems: true },
    attempt,
    created_at: epochMs,
    deadline: epochMs,
    timeout_ms: timeoutMs,
  },
} as const;

export const httpWpkRequestSchema = {
  $schema: DIALECT,
  $id: `${BASE}/http-wpk-request.json`,
  title: 'Body of POST /federation/wpk',
  type: 'object',
  required: ['capability', 'action'],
  additionalProperties: false,
  properties: {
    capability: id,
    action: id,
    params,
    mode: { type: 'string', enum: ['one', 'all'] },
    nodes: { type: 'array', items: id, minItems: 1, maxItems: MAX_TARGETS, uniqueItems: true },
    labels,
    timeout_ms: timeoutMs,
    deadline: epochMs,
    max_attempts: { type: 'integer', minimum: 1, maximum: MAX_ATTEMPTS },
    include_offline: { type: 'boolean' },
    continuous: { type: 'boolean' },
    rollout,
    abort: { type: 'array', items: abortCriterion, minItems: 1, maxItems: 10 },
    start_at: epochMs,
  },
} as const;

export const commandSchema = {
  $schema: DIALECT,
  $id: `${BASE}/command.json`,
  title: 'Command from the hub to one node',
  oneOf: [
    {
      type: 'object',
      required: ['command', 'wpk_id', 'attempt', 'ts'],
      additionalProperties: false,
      properties: {
        command: { const: 'cancel' },
        wpk_id: id,
        attempt,
        ts: epochMs,
      },
    },
    {
      type: 'object',
      required: ['command', 'ts'],
      additionalProperties: false,
      properties: { command: { const: 'rebirth' }, ts: epochMs },
    },
  ],
} as const;

export const hubStatusSchema = {
  $schema: DIALECT,
  $id: `${BASE}/hub-status.json`,
  title: 'Hub status (retained; offline/lost is the Last Will)',
  type: 'object',
  required: ['state', 'boot_id', 'ts'],
  additionalProperties: false,
  properties: {
    ...presence,
    version: shortText,
    // HA hubs (a PostgreSQL store) only: which hub holds the lease, and under which fencing epoch.
    hub_id: shortText,
    epoch: { type: 'integer', minimum: 1 },
  },
} as const;

export const hubErrorSchema = {
  $schema: DIALECT,
  $id: `${BASE}/hub-error.json`,
  title: 'Why the hub refused a message',
  type: 'object',
  required: ['code', 'reason', 'topic', 'ts'],
  additionalProperties: false,
  properties: {
    code: {
      type: 'string',
      enum: ['not_json', 'not_object', 'schema', 'too_large', 'node_id_mismatch', 'invalid_node_id', 'unknown_topic', 'not_allowed'],
    },
    reason: { type: 'string', maxLength: MAX_ERROR_LENGTH },
    topic: { type: 'string', maxLength: MAX_TOPIC_LENGTH },
    node_id: id,
    ts: epochMs,
  },
} as const;

/**
 * A desired or reported state: any JSON object. Its size (16 KB) and depth
 * (8) are checked in code (lib/desired-state.ts): JSON Schema bounds neither.
 */
const stateObject = { type: 'object' } as const;
const stateVersion = { type: 'integer', minimum: 0, maximum: MAX_STATE_VERSION } as const;

export const desiredStateSchema = {
  $schema: DIALECT,
  $id: `${BASE}/desired-state.json`,
  title: 'Desired state of a node (retained; published by the hub only)',
  type: 'object',
  required: ['version', 'state', 'ts'],
  additionalProperties: false,
  properties: { version: stateVersion, state: stateObject, ts: epochMs },
} as const;

export const reportedStateSchema = {
  $schema: DIALECT,
  $id: `${BASE}/reported-state.json`,
  title: 'Reported state of a node (retained; the desired version it applied)',
  type: 'object',
  required: ['version', 'state', 'ts'],
  additionalProperties: false,
  properties: { version: stateVersion, state: stateObject, ts: epochMs, error: { type: 'string', maxLength: MAX_ERROR_LENGTH } },
} as const;

export const httpRegistrationSchema = {
  $schema: DIALECT,
  $id: `${BASE}/http-registration.json`,
  title: 'Body of POST /federation/register',
  type: 'object',
  required: ['node_id', 'capabilities'],
  additionalProperties: false,
  properties: { node_id: id, capabilities, boot_id: bootId, ...nodeDescription },
} as const;

export const httpHeartbeatSchema = {
  $schema: DIALECT,
  $id: `${BASE}/http-heartbeat.json`,
  title: 'Body of POST /federation/nodes/:id/heartbeat',
  type: 'object',
  additionalProperties: false,
  properties: {
    uptime_s: heartbeatSchema.properties.uptime_s,
    load: heartbeatSchema.properties.load,
    running_wpks: heartbeatSchema.properties.running_wpks,
  },
} as const;

/** Every schema by the file name it is published under in schemas/json/. */
const nullable = <T extends object>(schema: T) => ({ anyOf: [schema, { type: 'null' }] }) as const;
const executionRecordState = {
  type: 'string', enum: ['queued', 'dispatched', 'accepted', 'running', 'succeeded', 'failed', 'rejected', 'timed_out', 'lost', 'canceled', 'skipped'],
} as const;

/** An execution as the hub records it (in a work package record). */
const apiExecution = {
  type: 'object',
  required: ['node_id', 'attempt', 'state', 'boot_id', 'progress', 'result', 'error', 'dispatched_at', 'started_at', 'finished_at', 'updated_at'],
  additionalProperties: false,
  properties: {
    node_id: id, attempt, state: executionRecordState, boot_id: { type: 'string' },
    progress: nullable({ type: 'number', minimum: 0, maximum: 1 }), result: nullable(params), error: nullable({ type: 'string' }),
    dispatched_at: epochMs, started_at: nullable(epochMs), finished_at: nullable(epochMs), updated_at: epochMs,
  },
} as const;

/** What every work package endpoint answers (docs/api.md, "The work package record"): for clients that check answers. */
export const apiWpkSchema = {
  $schema: DIALECT,
  $id: `${BASE}/api-wpk.json`,
  title: 'Work package record (answer of the HTTP API)',
  type: 'object',
  additionalProperties: false,
  required: [
    'wpk_id', 'state', 'capability', 'action', 'mode', 'params', 'nodes', 'labels', 'include_offline', 'continuous', 'start_at', 'rollout', 'abort',
    'aborted_by', 'next_dispatch_at', 'rollout_rate_per_minute', 'timeout_ms', 'max_attempts', 'attempt', 'assignee', 'created_at', 'updated_at',
    'deadline', 'finished_at', 'result', 'error', 'summary', 'executions',
  ],
  properties: {
    wpk_id: id,
    state: { type: 'string', enum: ['scheduled', 'pending', 'dispatched', 'running', 'succeeded', 'failed', 'timed_out', 'canceled', 'expired', 'aborted'] },
    capability: id, action: id, mode: { type: 'string', enum: ['one', 'all'] }, params,
    nodes: nullable({ type: 'array', items: id }), labels: nullable(labels),
    include_offline: { type: 'boolean' }, continuous: { type: 'boolean' }, start_at: nullable(epochMs), rollout: nullable(rollout),
    abort: { type: 'array', items: abortCriterion },
    aborted_by: nullable({
      type: 'object', required: ['on', 'min_executed', 'threshold_pct', 'executed', 'matched'], additionalProperties: false,
      properties: { ...abortCriterion.properties, executed: { type: 'integer', minimum: 0 }, matched: { type: 'integer', minimum: 0 } },
    }),
    next_dispatch_at: nullable({ type: 'number' }), rollout_rate_per_minute: nullable({ type: 'number', exclusiveMinimum: 0 }),
    timeout_ms: timeoutMs, max_attempts: { type: 'integer', minimum: 1 }, attempt: { type: 'integer', minimum: 0 }, assignee: nullable(id),
    created_at: epochMs, updated_at: epochMs, deadline: epochMs, finished_at: nullable(epochMs),
    result: nullable(params), error: nullable({ type: 'string' }),
    summary: { type: 'object', propertyNames: executionRecordState, additionalProperties: { type: 'integer', minimum: 0 } },
    executions: { type: 'array', items: apiExecution },
  },
} as const;

export const allSchemas = {
  registration: registrationSchema,
  status: statusSchema,
  heartbeat: heartbeatSchema,
  'execution-update': executionUpdateSchema,
  'wpk-trigger': wpkTriggerSchema,
  command: commandSchema,
  'hub-status': hubStatusSchema,
  'hub-error': hubErrorSchema,
  'desired-state': desiredStateSchema,
  'reported-state': reportedStateSchema,
  'http-registration': httpRegistrationSchema,
  'http-heartbeat': httpHeartbeatSchema,
  'http-wpk-request': httpWpkRequestSchema,
  'api-wpk': apiWpkSchema,
} as const;
