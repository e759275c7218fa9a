/**
 * The Flusher's pause: after a write, the next one waits at least
 * `costFactor` times the write's duration, also when changes keep arriving
 * during the write (a registration storm).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultFlusherOptions, Flusher } from '../hub/flusher.js';
import { bounded } from './helpers/scope.js';
import { sleep } from './helpers/time.js';

test('changes that arrive during a write wait for the pause after it', bounded(async () => {
  const writes: Array<{ start: number; end: number }> = [];
  const flusher = new Flusher(async () => {
    const start = Date.now();
    await sleep(20);
    writes.push({ start, end: Date.now() });
  }, { ...defaultFlusherOptions, soonMs: 5, lazyMs: 1000, costFactor: 8, onError: () => undefined });
  const storm = setInterval(() => flusher.markDirty('durable'), 2);
  await sleep(900);
  clearInterval(storm);
  await flusher.stop();
  assert.ok(writes.length >= 3, `${writes.length} writes`);
  for (let i = 1; i < writes.length; i += 1) {
    const took = writes[i - 1]!.end - writes[i - 1]!.start;
    const pause = writes[i]!.start - writes[i - 1]!.end;
    // The last write may be the final flush of stop(), which does not wait.
    if (i === writes.length - 1) continue;
    assert.ok(pause >= 8 * took - 5, `write ${i + 1} began ${pause} ms after a write of ${took} ms`);
  }
}, { timeoutMs: 5000 }));

test('a store that keeps failing is retried with a growing pause, and a failure is never reported as a flush', bounded(async () => {
  const attempts: number[] = [];
  let flushed = 0;
  let errors = 0;
  let up = false;
  const flusher = new Flusher(async () => {
    attempts.push(Date.now());
    if (!up) throw new Error('database away');
  }, { ...defaultFlusherOptions, soonMs: 0, costFactor: 0, retryMinMs: 20, retryMaxMs: 80, onError: () => { errors += 1; }, onFlushed: () => { flushed += 1; } });
  flusher.markDirty('durable');
  await sleep(400);
  assert.is(flushed, 0, 'no failed write counts as a flush');
  assert.ok(attempts.length >= 4 && attempts.length <= 9, `${attempts.length} attempts in 400 ms: backed off, not a tight loop`);
  assert.is(errors, attempts.length);
  const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
  assert.ok(gaps[0]! >= 18 && gaps[1]! >= 38 && gaps[2]! >= 78, `gaps double up to the cap: ${gaps.join(', ')}`);
  assert.ok(gaps.every((g) => g < 150), `the pause is capped: ${gaps.join(', ')}`);
  up = true;
  await sleep(150);
  assert.is(flushed, 1, 'the retry after the store came back is a flush');
  await flusher.stop();
}, { timeoutMs: 5000 }));

test.run();
