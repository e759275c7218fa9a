/**
 * The dashboard's page logic that needs no DOM, run in Node: the SSE parser
 * (chunk boundaries anywhere, CRLF, comments) and the store's rules from the
 * feed contract (a snapshot replaces everything, new WPKs on top, at most
 * 200, a 5-minute series). The modules are plain browser JS, loaded as is.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

interface SseEvent { type: string; data: string }
interface SseModule { createSseParser(onEvent: (e: SseEvent) => void): { push(text: string): void; reset(): void } }
interface Wpk { wpk_id: string; created_at: number; state: string }
interface Point { t: number; dispatched: number }
interface Store {
  nodes: Map<string, { node_id: string; status: string }>;
  wpks: Wpk[];
  series: Point[];
  counts: unknown;
  clockOffsetMs: number;
  dirty: { snapshot: boolean; membership: boolean; nodes: Set<string>; wpks: boolean; series: boolean };
}
interface StoreModule {
  MAX_WPKS: number;
  createStore(): Store;
  applyEvent(store: Store, type: string, data: unknown): void;
  takeDirty(store: Store): Store['dirty'];
}

const DASHBOARD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dashboard');
// A computed specifier: these are browser modules without type declarations.
const load = <T>(name: string): Promise<T> => import(pathToFileURL(path.join(DASHBOARD, name)).href) as Promise<T>;
const { createSseParser } = await load<SseModule>('sse.js');
const { MAX_WPKS, applyEvent, createStore, takeDirty } = await load<StoreModule>('store.js');

const test = suite('dashboard: page logic');

const STREAM = ': ping\n\nevent: snapshot\ndata: {"a":1}\n\r\nevent: nodes\r\ndata: x\r\ndata: y\r\n\r\n: keepalive\rdata: plain\r\r';

test('SSE: events, multi-line data, comments and CR/LF/CRLF, split at every possible boundary', () => {
  for (let size = 1; size <= STREAM.length; size += 1) {
    const seen: SseEvent[] = [];
    const parser = createSseParser((e) => seen.push(e));
    for (let i = 0; i < STREAM.length; i += size) parser.push(STREAM.slice(i, i + size));
    parser.push('\n'); // the final lone CR could have been half a CRLF: one more byte settles it
    assert.equal(seen, [
      { type: 'snapshot', data: '{"a":1}' },
      { type: 'nodes', data: 'x\ny' },
      { type: 'message', data: 'plain' },
    ], `chunks of ${size}`);
  }
});

test('SSE: a 2 MB data line over many chunks arrives whole; reset drops a half event', () => {
  const big = JSON.stringify({ nodes: Array.from({ length: 20_000 }, (_, i) => ({ node_id: `node-${i}`, status: 'active' })) });
  const seen: SseEvent[] = [];
  const parser = createSseParser((e) => seen.push(e));
  const text = `event: snapshot\ndata: ${big}\n\n`;
  for (let i = 0; i < text.length; i += 65_536) parser.push(text.slice(i, i + 65_536));
  assert.is(seen.length, 1);
  assert.is(seen[0]!.data, big);
  parser.push('event: nodes\ndata: half');
  parser.reset();
  parser.push('\n\n');
  assert.is(seen.length, 1, 'nothing from before the reset');
});

const node = (id: string, status = 'active') => ({ node_id: id, status, status_reason: null, capabilities: ['monitoring'], labels: {}, last_seen: 1, load: null, running: 0 });
const wpk = (id: string, created: number, state = 'pending'): Wpk => ({ wpk_id: id, created_at: created, state });
const snapshot = (extra: Record<string, unknown> = {}) => ({ now: 1000, hub: { boot_id: 'b', version: '0', auth: 'none', connected: true }, nodes: [], wpks: [], series: [], counts: null, ...extra });

test('store: a snapshot replaces everything the page knew', () => {
  const store = createStore();
  applyEvent(store, 'snapshot', snapshot({ nodes: [node('a'), node('b')], wpks: [wpk('w1', 1)] }));
  applyEvent(store, 'nodes', { upsert: [node('c')], remove: [] });
  applyEvent(store, 'snapshot', snapshot({ nodes: [node('z')], wpks: [] }));
  assert.equal([...store.nodes.keys()], ['z']);
  assert.is(store.wpks.length, 0);
  const dirty = takeDirty(store);
  assert.ok(dirty.snapshot && dirty.membership);
  assert.not.ok(takeDirty(store).snapshot, 'taken once');
  assert.throws(() => applyEvent(store, 'snapshot', { nodes: 'nope' }), /malformed/);
});

test('store: node upserts and removals mark membership only when the set of nodes changes', () => {
  const store = createStore();
  applyEvent(store, 'snapshot', snapshot({ nodes: [node('a')] }));
  takeDirty(store);
  applyEvent(store, 'nodes', { upsert: [node('a', 'offline')] });
  let dirty = takeDirty(store);
  assert.not.ok(dirty.membership);
  assert.equal([...dirty.nodes], ['a']);
  assert.is(store.nodes.get('a')!.status, 'offline');
  applyEvent(store, 'nodes', { upsert: [node('b')], remove: ['a', 'ghost'] });
  dirty = takeDirty(store);
  assert.ok(dirty.membership);
  assert.equal([...store.nodes.keys()], ['b']);
});

test('store: WPKs newest first; an unknown one goes on top; at most 200, the oldest dropped', () => {
  const store = createStore();
  const initial = Array.from({ length: MAX_WPKS }, (_, i) => wpk(`w${i}`, 10_000 - i));
  applyEvent(store, 'snapshot', snapshot({ wpks: initial }));
  assert.is(store.wpks[0]!.wpk_id, 'w0');
  applyEvent(store, 'wpks', { upsert: [wpk('new', 20_000), wpk('w5', 10_000 - 5, 'succeeded')] });
  assert.is(store.wpks.length, MAX_WPKS);
  assert.is(store.wpks[0]!.wpk_id, 'new');
  assert.is(store.wpks.find((w) => w.wpk_id === 'w5')!.state, 'succeeded', 'an update in place');
  assert.not.ok(store.wpks.some((w) => w.wpk_id === `w${MAX_WPKS - 1}`), 'the oldest left');
});

test('store: stats append one point per second, replace a repeated second, keep 5 minutes, follow the hub clock', () => {
  const store = createStore();
  applyEvent(store, 'snapshot', snapshot({ series: [{ t: 0, dispatched: 1 }, { t: 1000, dispatched: 2 }] }));
  applyEvent(store, 'stats', { now: Date.now() + 60_000, point: { t: 1000, dispatched: 5 }, counts: { nodes: {} } });
  assert.equal(store.series.map((p) => p.dispatched), [1, 5]);
  assert.ok(Math.abs(store.clockOffsetMs - 60_000) < 1000, 'durations use the hub clock');
  applyEvent(store, 'stats', { now: 0, point: { t: 500, dispatched: 9 } });
  assert.is(store.series.length, 2, 'an older point is ignored');
  applyEvent(store, 'stats', { now: 0, point: { t: 300_000, dispatched: 3 } });
  assert.equal(store.series.map((p) => p.t), [1000, 300_000], '5 minutes: 300 one-second points');
  applyEvent(store, 'stats', { now: 0, point: { t: 301_000, dispatched: 3 } });
  assert.equal(store.series.map((p) => p.t), [300_000, 301_000], 'older than 5 minutes dropped');
  applyEvent(store, 'future-event', { anything: true });
});

test.run();
