/**
 * Paged lists: `GET /federation/nodes?limit=&after=` and `GET /federation/wpk`
 * page through everything once, in order, while records come and go; bad
 * paging is refused like any bad filter; `edgefed nodes` follows the pages;
 * the dashboard feed keeps a page posted on a window of a large fleet; and
 * `edgefed nodes` says why a node is offline or stale.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ApiHealth, ApiNodeList, ApiWpkList, FeedSnapshot } from '../lib/api.js';
import { topics } from '../lib/topics.js';
import type { Federation } from '../server/federation.js';
import { CLI_ARGS } from './helpers/cli.js';
import { api, device, federation, post, registration } from './helpers/federation.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor } from './helpers/time.js';

const run = promisify(execFile);
const t = topics();

async function fleet(scope: Scope, ids: string[], opts: Parameters<typeof federation>[0] = {}): Promise<{ fed: Federation; add(id: string, caps?: string[]): Promise<void> }> {
  const fed = await federation(opts);
  scope.defer(() => fed.stop());
  const dev = await device(fed, 'fleet');
  scope.defer(() => dev.endAsync(true));
  const add = async (id: string, caps = ['monitoring']) => {
    await dev.publishAsync(t.registration(id), JSON.stringify(registration(id, { capabilities: caps })), { qos: 1, retain: true });
  };
  for (const id of ids) await add(id, Number(id.slice(2)) % 3 === 0 ? ['monitoring', 'camera'] : ['monitoring']);
  await waitFor(() => fed.hubApi.nodes().length === ids.length, { label: `${ids.length} nodes` });
  return { fed, add };
}

const ids = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `n-${i + from}`);

test('nodes: pages of limit cover every node once, in numeric-aware order, with next and a Link header', bounded(async (scope) => {
  const { fed } = await fleet(scope, ids(23));
  const seen: string[] = [];
  let after: string | null = null;
  let pages = 0;
  do {
    const res: Response = await fetch(`${fed.api.url}/federation/nodes?limit=7${after ? `&after=${after}` : ''}`);
    const body = (await res.json()) as ApiNodeList;
    pages += 1;
    assert.is(body.count, body.nodes.length);
    seen.push(...body.nodes.map((n) => n.node_id));
    if (body.next) assert.is(res.headers.get('link'), `</federation/nodes?limit=7&after=${body.next}>; rel="next"`);
    else assert.is(res.headers.get('link'), null);
    after = body.next;
  } while (after !== null);
  assert.is(pages, 4, '7 + 7 + 7 + 2, and no empty page after the last');
  assert.equal(seen, ids(23), 'n-2 before n-10');
  const whole = (await api<ApiNodeList>(fed, '/federation/nodes')).body;
  assert.equal([whole.count, whole.next], [23, null], 'without limit the list is whole, as the seed contract had it');
}, { timeoutMs: 10_000 }));

test('nodes: a cursor stays valid while nodes come and go, and filters page too', bounded(async (scope) => {
  const { fed, add } = await fleet(scope, ids(20));
  const first = (await api<ApiNodeList>(fed, '/federation/nodes?limit=5&capability=camera')).body;
  assert.equal(first.nodes.map((n) => n.node_id), ['n-3', 'n-6', 'n-9', 'n-12', 'n-15']);
  await add('n-0', ['camera']); // sorts before the cursor: not on a later page
  await add('n-13', ['camera']); // after it: on the next
  await add('n-99', ['camera']);
  await waitFor(() => fed.hubApi.nodes().length === 22, { label: 'two more' });
  const second = (await api<ApiNodeList>(fed, `/federation/nodes?limit=5&capability=camera&after=${first.next}`)).body;
  assert.equal(second.nodes.map((n) => n.node_id), ['n-18', 'n-99']);
  assert.is(second.next, null);
  // The cursor's own node may be gone: the page still starts after its place.
  const gone = (await api<ApiNodeList>(fed, '/federation/nodes?limit=2&after=n-10x')).body;
  assert.equal(gone.nodes.map((n) => n.node_id), ['n-11', 'n-12']);
}, { timeoutMs: 10_000 }));

test('nodes and wpk: bad paging is a 400 that is logged and counted, and changes nothing', bounded(async (scope) => {
  const { fed } = await fleet(scope, ids(3));
  const before = (await api<ApiHealth>(fed, '/health')).body.counters.refusals.schema ?? 0;
  for (const q of ['limit=0', 'limit=5001', 'limit=x', 'after=..%2Fetc', 'limit=2&after=']) {
    const r = await api<{ error: { code: string; message: string } }>(fed, `/federation/nodes?${q}`);
    assert.equal([r.status, r.body.error.code], [400, 'EDGEFED_ERR_BAD_FILTER'], q);
  }
  const w = await api<{ error: { code: string } }>(fed, '/federation/wpk?after=not-a-cursor');
  assert.equal([w.status, w.body.error.code], [400, 'EDGEFED_ERR_BAD_FILTER']);
  const after = (await api<ApiHealth>(fed, '/health')).body.counters.refusals.schema ?? 0;
  assert.is(after - before, 6, 'each refusal counted (as schema, with the HTTP body refusals)');
}, { timeoutMs: 10_000 }));

test('wpk: pages newest first, each once, while new WPKs arrive', bounded(async (scope) => {
  const { fed } = await fleet(scope, []);
  const created: string[] = [];
  for (let i = 0; i < 12; i += 1) created.push((await api<{ wpk_id: string }>(fed, '/federation/wpk', post({ capability: 'nobody', action: 'echo' }))).body.wpk_id);
  const p1 = (await api<ApiWpkList>(fed, '/federation/wpk?limit=5')).body;
  await api(fed, '/federation/wpk', post({ capability: 'nobody', action: 'echo' })); // newer than the cursor: not on later pages
  const p2 = (await api<ApiWpkList>(fed, `/federation/wpk?limit=5&after=${p1.next}`)).body;
  const p3 = (await api<ApiWpkList>(fed, `/federation/wpk?limit=5&after=${p2.next}`)).body;
  const seen = [...p1.wpks, ...p2.wpks, ...p3.wpks].map((w) => w.wpk_id);
  assert.is(p3.next, null, 'a page that is not full is the last');
  assert.equal([...seen].sort(), [...created].sort(), 'each WPK once');
  const times = [...p1.wpks, ...p2.wpks, ...p3.wpks].map((w) => w.created_at);
  assert.equal(times, [...times].sort((a, b) => b - a), 'newest first');
}, { timeoutMs: 10_000 }));

test('edgefed nodes reads a large fleet a page at a time; --limit stops early', bounded(async (scope) => {
  const { fed } = await fleet(scope, ids(1050));
  const all = await run(process.execPath, [...CLI_ARGS, 'nodes', '--hub', fed.api.url, '--json'], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
  const nodes = JSON.parse(all.stdout) as Array<{ node_id: string }>;
  assert.is(nodes.length, 1050, 'two pages of 1,000 and 50');
  assert.is(nodes.at(-1)?.node_id, 'n-1050');
  const some = await run(process.execPath, [...CLI_ARGS, 'nodes', '--hub', fed.api.url, '--limit', '3'], { timeout: 30_000 });
  assert.match(some.stdout, /n-1\b[\s\S]*n-2\b[\s\S]*n-3\b[\s\S]*3 node\(s\)/);
}, { timeoutMs: 60_000 }));

test('edgefed nodes shows why a node is offline or stale', bounded(async (scope) => {
  const { fed } = await fleet(scope, ids(2));
  const dev = await device(fed, 'will-sender');
  scope.defer(() => dev.endAsync(true));
  await dev.publishAsync(t.status('n-2'), JSON.stringify({ state: 'offline', reason: 'lost', boot_id: 'boot-n-2', ts: Date.now() }), { qos: 1, retain: true });
  await waitFor(() => fed.hubApi.node('n-2')?.status === 'offline', { label: 'n-2 offline' });
  const out = (await run(process.execPath, [...CLI_ARGS, 'nodes', '--hub', fed.api.url], { timeout: 30_000 })).stdout;
  assert.match(out, /n-1\s+active\s/);
  assert.match(out, /n-2\s+offline \(lost\)\s/);
}, { timeoutMs: 30_000 }));

test('the dashboard feed keeps a page posted on a window of a fleet larger than it', bounded(async (scope) => {
  const { fed } = await fleet(scope, ids(8), { feed: { maxNodes: 5, batchMs: 50, statsMs: 100 } });
  const ctrl = new AbortController();
  scope.defer(() => ctrl.abort());
  const res = await fetch(`${fed.api.url}/federation/events`, { signal: ctrl.signal });
  const reader = res.body!.getReader();
  let text = '';
  while (!/event: snapshot\ndata: .*\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
  const snap = JSON.parse(/event: snapshot\ndata: (.*)\n/.exec(text)![1]!) as FeedSnapshot;
  assert.equal(snap.nodes.map((n) => n.node_id), ids(5), 'the first 5 by node id');
  assert.is(snap.nodes_total, 8);
  await reader.cancel();
}, { timeoutMs: 10_000 }));

test.run();
