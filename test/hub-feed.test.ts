/**
 * GET /federation/events, the dashboard's live feed, read as a page would:
 * a snapshot first, then batched changes (a node joins, dies, a WPK runs),
 * stats points every second, the same auth rules as the rest of the API,
 * and no timers left once the last page is gone.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { FleetCounts, NodeView, WpkView } from '../server/feed/index.js';
import { federation } from './helpers/federation.js';
import { scriptedNode } from './helpers/nodes.js';
import { securedFederation } from './helpers/secured.js';
import { bounded } from './helpers/scope.js';
import { openSse } from './helpers/sse.js';
import { waitFor, withTimeout } from './helpers/time.js';

const test = suite('hub: live feed (Server-Sent Events)');

interface Snapshot { now: number; hub: { boot_id: string; auth: string; connected: boolean }; nodes: NodeView[]; wpks: WpkView[]; series: unknown[]; counts: FleetCounts }
interface NodesEvent { upsert: NodeView[]; remove: string[] }
/** The feed's timers shortened (changes every 50 ms, stats every 100 ms): the same events, sooner. */
const FAST_FEED = { feed: { batchMs: 50, statsMs: 100 } };

interface Stats { now: number; point: { t: number; dispatched: number; finished: number; latency_p50_ms: number | null } | null; counts: FleetCounts }

test('a snapshot of the fleet first, then a node that joins, runs a WPK and dies, batched; stats every second', bounded(async (scope) => {
  const fed = await federation(FAST_FEED);
  scope.defer(() => fed.stop());
  await scriptedNode(scope, fed, 'edge-f0');
  const res = await withTimeout(fetch(`${fed.api.url}/federation/events`, { method: 'HEAD' }), 3000, 'HEAD');
  // HEAD answers the stream's headers and ends: nothing is held open for it.
  assert.is(res.status, 200, 'HEAD answers like GET');
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.is(await withTimeout(res.text(), 3000, 'HEAD body'), '');
  const sse = await openSse(`${fed.api.url}/federation/events`);
  scope.defer(() => sse.close());
  const snap = await sse.next<Snapshot>('snapshot');
  assert.is(snap.hub.boot_id, fed.hub.bootId);
  assert.is(snap.hub.auth, 'none');
  assert.equal(snap.nodes.map((n) => [n.node_id, n.status]), [['edge-f0', 'active']]);
  assert.is(snap.counts.nodes.active, 1);
  assert.equal(snap.counts.capabilities.monitoring, { active: 1, stale: 0, offline: 0, deregistered: 0 });

  const node = await scriptedNode(scope, fed, 'edge-f1', { capabilities: ['gpu'] });
  const joined = await sse.next<NodesEvent>('nodes', (d) => d.upsert.some((n) => n.node_id === 'edge-f1'));
  assert.is(joined.upsert.find((n) => n.node_id === 'edge-f1')!.status, 'active');
  assert.not.ok(joined.upsert.some((n) => n.node_id === 'edge-f0'), 'an unchanged node is not resent');

  const wpk = await fed.hub.wpks.create({ capability: 'gpu', action: 'echo' });
  const busy = await sse.next<NodesEvent>('nodes', (d) => d.upsert.some((n) => n.node_id === 'edge-f1' && n.running === 1));
  assert.ok(busy, 'the hub\'s in-flight count shows on the node');
  await node.complete(await node.triggerOf(wpk.wpk_id));
  const done = await sse.next<{ upsert: WpkView[] }>('wpks', (d) => d.upsert.some((w) => w.wpk_id === wpk.wpk_id && w.state === 'succeeded'));
  const view = done.upsert.find((w) => w.wpk_id === wpk.wpk_id)!;
  assert.equal([view.capability, view.action, view.assignee], ['gpu', 'echo', 'edge-f1']);
  assert.not.ok('params' in view || 'executions' in view, 'the feed carries slim views');

  // The trigger and its answer may fall in different seconds: look at every point seen.
  const answered = await sse.next<Stats>('stats', (d) => d.point !== null && d.point.latency_p50_ms !== null, { timeoutMs: 4000 });
  assert.ok(answered.point!.latency_p50_ms! >= 0);
  const latest = await sse.next<Stats & { connected: boolean }>('stats', (d) => d.counts.wpks.succeeded === 1);
  assert.is(latest.connected, true, 'stats say whether the hub\'s broker session is up');
  const points = sse.events.filter((e) => e.event === 'stats').map((e) => (e.data as Stats).point).filter((p) => p !== null);
  const seconds = new Map(points.map((p) => [p.t, p.dispatched]));
  assert.is([...seconds.values()].reduce((a, b) => a + b, 0), 1, 'one trigger in all the seconds seen');

  node.kill();
  const died = await sse.next<NodesEvent>('nodes', (d) => d.upsert.some((n) => n.node_id === 'edge-f1' && n.status === 'offline'));
  assert.is(died.upsert.find((n) => n.node_id === 'edge-f1')!.status_reason, 'lost');
}, { timeoutMs: 12_000 }));

test('with auth on, the stream needs a bearer token (401 without); an operator token gets the snapshot; a stream ends when its token runs out', bounded(async (scope) => {
  // No clock leeway, so a 1 s token runs out in 1-2 s rather than 31.
  const { fed, token: mint } = await securedFederation(scope, { clockToleranceS: 0 }, FAST_FEED);
  const anon = await withTimeout(fetch(`${fed.api.url}/federation/events`), 3000, 'anonymous');
  assert.is(anon.status, 401);
  assert.is(anon.headers.get('www-authenticate'), 'Bearer');
  await anon.text();
  const token = await mint({ role: 'operator' });
  const sse = await openSse(`${fed.api.url}/federation/events`, token);
  scope.defer(() => sse.close());
  assert.is((await sse.next<Snapshot>('snapshot')).hub.auth, 'jwt');
  // A stream ends when the token that opened it expires (exp has second precision: 1-2 s from now).
  const brief = await mint({ role: 'operator', ttlSeconds: 1 });
  const short = await openSse(`${fed.api.url}/federation/events`, brief);
  scope.defer(() => short.close());
  await short.next('snapshot');
  await withTimeout(short.ended, 4000, 'stream ends at exp');
  let longOpen = true;
  void sse.ended.then(() => { longOpen = false; });
  // A stats event after the short stream ended shows the long one still being served.
  const from = sse.events.length;
  await waitFor(() => !longOpen || sse.events.slice(from).some((e) => e.event === 'stats'), { label: 'a stats event or the end of the stream' });
  assert.ok(longOpen, 'a stream with a valid token stays open');
}, { timeoutMs: 8000 }));

test('every page gets the same changes; the feed stops its timers when the last page leaves, and closing the API ends open streams', bounded(async (scope) => {
  const fed = await federation(FAST_FEED);
  let stopped = false;
  scope.defer(() => (stopped ? undefined : fed.stop()));
  const a = await openSse(`${fed.api.url}/federation/events`);
  const b = await openSse(`${fed.api.url}/federation/events`);
  scope.defer(() => { a.close(); b.close(); });
  await Promise.all([a.next('snapshot'), b.next('snapshot')]);
  await scriptedNode(scope, fed, 'edge-f2');
  await Promise.all([a, b].map((s) => s.next<NodesEvent>('nodes', (d) => d.upsert.some((n) => n.node_id === 'edge-f2'))));
  a.close();
  b.close();
  // The API must still close promptly with streams open (a fresh one here).
  const c = await openSse(`${fed.api.url}/federation/events`);
  scope.defer(() => c.close());
  await c.next('snapshot');
  await withTimeout(fed.stop(), 3000, 'stop with an open stream');
  stopped = true;
}));

test.run();
