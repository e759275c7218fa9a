/**
 * The HTTP answers are mapped from the storage records field by field
 * (server/http/views.ts): a field only the store has stays out of the API,
 * and the CLI types what it reads with lib/api.ts, not with hub/ records.
 */
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { NodeRecord } from '../hub/registry.js';
import type { WpkRecord } from '../hub/wpk/types.js';
import { apiNode, apiWpk } from '../server/http/views.js';

const views = suite('API views of the storage records');

const node: NodeRecord = {
  id: 'reg_1', node_id: 'n1', endpoint: null, capabilities: ['c'], labels: {}, agent: null, hardware: null,
  heartbeat_interval_ms: 1000, max_concurrency: 2, boot_id: 'b', registered_at: 1, updated_at: 2, status: 'active',
  status_reason: null, last_seen: 3, load: 0.5, running_wpks: 0, registration_ts: 4,
};
const wpk: WpkRecord = {
  wpk_id: 'wpk_1', state: 'running', capability: 'c', action: 'a', mode: 'one', params: {}, nodes: null, labels: null, include_offline: false,
  continuous: false, start_at: null, rollout: null, abort: [], aborted_by: null, next_dispatch_at: null,
  timeout_ms: 10, max_attempts: 3, attempt: 1, assignee: 'n1', created_at: 1, updated_at: 2, deadline: 3, finished_at: null,
  result: null, error: null, summary: { running: 1 },
  executions: [{ node_id: 'n1', attempt: 1, state: 'running', boot_id: 'b', progress: 0.5, result: null, error: null, dispatched_at: 1, started_at: 2, finished_at: null, updated_at: 2 }],
};

views('today every field of a record is answered, in its order (docs/api.md)', () => {
  // Plus three fields derived from the desired state the record keeps (none here), and
  // unresponsive_since, which records stored before it lack (null).
  assert.is(JSON.stringify(apiNode(node)), JSON.stringify({ ...node, state_version: 0, in_sync: true, state_error: null, unresponsive_since: null }));
  // Plus the rollout's current rate, derived from the record (none here), after the rollout's own fields.
  const answered = Object.entries(wpk).flatMap(([k, v]) => (k === 'next_dispatch_at' ? [[k, v], ['rollout_rate_per_minute', null]] : [[k, v]]));
  assert.is(JSON.stringify(apiWpk(wpk)), JSON.stringify(Object.fromEntries(answered)));
});

views('a field only the store keeps is not answered', () => {
  const stored = { ...node, flushed_at: 5 } as NodeRecord;
  assert.not.ok('flushed_at' in apiNode(stored));
  const execution = { ...wpk.executions[0]!, spool: 'x' };
  assert.not.ok('spool' in apiWpk({ ...wpk, executions: [execution] }).executions[0]!);
});

views('the CLI reads the API through lib/api.ts, not through hub/ records', () => {
  for (const file of ['nodes', 'trigger', 'wpk', 'hub-client']) {
    const text = readFileSync(new URL(`../cli/${file}.ts`, import.meta.url), 'utf8');
    assert.not.match(text, /from '\.\.\/hub\//, `cli/${file}.ts imports hub/`);
  }
});

views.run();
