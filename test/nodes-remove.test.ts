/**
 * Issue 12 §3: nodes can be removed. `DELETE /federation/nodes/:id` takes
 * the record away (404 after), clears its retained registration and status
 * on the broker, gives up the work it held as if the node were lost, and a
 * later registration is a new node; `edgefed nodes rm` and `nodes prune`
 * drive it; the hub removes nodes offline past `offlineRetentionMs`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiNode, ApiWpk } from '../lib/api.js';
import { topics } from '../lib/topics.js';
import { CLI_ARGS } from './helpers/cli.js';
import { api, collector, device, federation, post, registration } from './helpers/federation.js';
import { bounded } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

const run = promisify(execFile);
const t = topics();
const del = { method: 'DELETE' } as const;

test('DELETE a node: gone (404), retained topics cleared, its work moves on, a new registration is a new node', bounded(async (scope) => {
  const fed = await federation();
  scope.defer(() => fed.stop());
  const dev = await device(fed, 'dev');
  scope.defer(() => dev.endAsync(true));
  await dev.publishAsync(t.registration('a'), JSON.stringify(registration('a')), { qos: 1, retain: true });
  await dev.publishAsync(t.status('a'), JSON.stringify({ state: 'online', boot_id: 'boot-a', ts: Date.now() }), { qos: 1, retain: true });
  await waitFor(() => fed.hubApi.node('a')?.status === 'active', { label: 'a active' });
  const before = fed.hubApi.node('a')!.id;
  const w = (await api<ApiWpk>(fed, '/federation/wpk', post({ capability: 'monitoring', action: 'echo', max_attempts: 2 }))).body;
  assert.is(w.assignee, 'a');

  const removed = await api<{ removed: string }>(fed, '/federation/nodes/a', del);
  assert.equal([removed.status, removed.body], [200, { removed: 'a' }]);
  assert.is((await api(fed, '/federation/nodes/a')).status, 404);
  assert.is((await api(fed, '/federation/nodes/a', del)).status, 404, 'an unknown node');
  await waitFor(async () => (await api<ApiWpk>(fed, `/federation/wpk/${w.wpk_id}`)).body.executions[0]?.state === 'lost', { label: 'its work given up' });

  const watcher = await device(fed, 'watcher');
  scope.defer(() => watcher.endAsync(true));
  const seen = await collector(watcher, 'edgefed/v1/nodes/a/#');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(seen.filter((m) => m.retain && m.payload !== ''), [], 'no retained registration or status is left');

  await dev.publishAsync(t.registration('a'), JSON.stringify(registration('a', { boot_id: 'boot-a2' })), { qos: 1, retain: true });
  await waitFor(() => fed.hubApi.node('a')?.status === 'active', { label: 'a back' });
  assert.is.not(fed.hubApi.node('a')!.id, before, 'a new node: a new registration id');
}));

test('edgefed nodes prune (dry run, then for real) and nodes rm of an unknown id', bounded(async (scope) => {
  const fed = await federation();
  scope.defer(() => fed.stop());
  const dev = await device(fed, 'dev');
  scope.defer(() => dev.endAsync(true));
  for (const id of ['live', 'gone']) await dev.publishAsync(t.registration(id), JSON.stringify(registration(id)), { qos: 1, retain: true });
  await dev.publishAsync(t.status('gone'), JSON.stringify({ state: 'offline', reason: 'lost', boot_id: 'boot-gone', ts: Date.now() }), { qos: 1, retain: true });
  await waitFor(() => fed.hubApi.node('gone')?.status === 'offline', { label: 'gone offline' });
  const cli = (args: string[]) => run(process.execPath, [...CLI_ARGS, 'nodes', ...args, '--hub', fed.api.url], { timeout: 20_000 })
    .then((r) => ({ code: 0, out: r.stdout, err: r.stderr }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }));
  const dry = await cli(['prune', '--offline-for', '0s', '--dry-run']);
  assert.equal([dry.code, dry.out], [0, 'gone\nwould remove 1 node(s)\n']);
  const other = await cli(['prune', '--offline-for', '0s', '--label', 'sim=true']);
  assert.equal([other.code, other.out], [0, 'No node has been offline for more than 0s.\n'], '--label: only nodes with that label (gone has none)');
  assert.ok(fed.hubApi.node('gone'), 'a dry run removes nothing');
  const real = await cli(['prune', '--offline-for', '0s']);
  assert.equal([real.code, real.out], [0, 'removed gone\n']);
  assert.equal(fed.hubApi.nodes().map((n: { node_id: string }) => n.node_id), ['live']);
  const unknown = await cli(['rm', 'nope', 'live']);
  assert.is(unknown.code, 1);
  assert.match(unknown.err, /edgefed nodes: nope: .*404: no node "nope"/);
  assert.match(unknown.out, /removed live\n1 of 2 node\(s\) removed/);
}, { timeoutMs: 30_000 }));

test('the hub removes nodes offline longer than offlineRetentionMs', bounded(async (scope) => {
  const fed = await federation({ hub: { offlineRetentionMs: 300 } });
  scope.defer(() => fed.stop());
  const dev = await device(fed, 'dev');
  scope.defer(() => dev.endAsync(true));
  await dev.publishAsync(t.registration('x'), JSON.stringify(registration('x')), { qos: 1, retain: true });
  await dev.publishAsync(t.status('x'), JSON.stringify({ state: 'offline', reason: 'shutdown', boot_id: 'boot-x', ts: Date.now() }), { qos: 1, retain: true });
  await waitFor(() => fed.hubApi.node('x')?.status === 'offline', { label: 'x offline' });
  await waitFor(() => fed.hubApi.node('x') === undefined, { timeoutMs: 3000, label: 'removed past the retention' });
  const listed = (await api<{ nodes: ApiNode[] }>(fed, '/federation/nodes')).body.nodes;
  assert.equal(listed, []);
}));

test.run();
