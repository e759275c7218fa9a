/** The per-second dispatch series behind the dashboard's chart, on a hand-driven clock. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ActivitySeries, percentile } from '../server/feed/activity.js';
import { HubObservers } from '../hub/observe.js';

function series(keepSeconds = 300, maxSamplesPerSecond = 2048) {
  let now = 1_000_000;
  const o = new HubObservers();
  const s = new ActivitySeries(o, { keepSeconds, maxSamplesPerSecond, now: () => now });
  return { o, s, advance: (ms: number) => { now += ms; } };
}

test('a second closes with its dispatches, finished WPKs and latency percentiles; the open second is not shown', () => {
  const { o, s, advance } = series();
  for (let i = 1; i <= 100; i++) o.dispatchAnswered.emit(i);
  o.triggered.emit();
  o.triggered.emit();
  o.wpkFinished.emit('succeeded', 5);
  assert.equal(s.points(), [], 'nothing closed yet');
  advance(1000);
  assert.equal(s.points(), [{ t: 1_000_000, dispatched: 2, finished: 1, latency_p50_ms: 50, latency_p95_ms: 95 }]);
  assert.equal(s.last(), s.points()[0]);
});

test('quiet seconds are zero points; the window keeps only the last keepSeconds', () => {
  const { o, s, advance } = series(5);
  o.triggered.emit();
  advance(3000);
  assert.equal(s.points().map((p) => [p.dispatched, p.latency_p50_ms]), [[1, null], [0, null], [0, null]]);
  advance(60_000);
  const pts = s.points();
  assert.is(pts.length, 5);
  assert.ok(pts.every((p, i) => i === 0 || p.t - pts[i - 1]!.t === 1000), 'consecutive seconds');
  assert.is(pts.at(-1)!.t, 1_000_000 + 62_000);
});

test('beyond maxSamplesPerSecond, latencies are sampled, not all kept', () => {
  const { o, s, advance } = series(300, 64);
  for (let i = 0; i < 10_000; i++) o.dispatchAnswered.emit(i < 5000 ? 1 : 3);
  advance(1000);
  const p = s.last()!;
  assert.ok(p.latency_p50_ms === 1 || p.latency_p50_ms === 3);
  assert.is(p.latency_p95_ms, 3);
});

test('percentile: nearest rank', () => {
  assert.is(percentile([], 0.5), null);
  assert.is(percentile([7], 0.95), 7);
  assert.is(percentile([1, 2, 3, 4], 0.5), 2);
  assert.is(percentile([1, 2, 3, 4], 0.95), 4);
  assert.is(percentile([0.123456], 0.5), 0.12);
});

test.run();
