/**
 * The Flusher's pause: after a write, the next one waits at least
 * `costFactor` times the write's duration, also when changes keep arriving
 * during the write (a registration storm).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Flusher } from '../hub/flusher.js';
import { bounded } from './helpers/scope.js';
import { sleep } from './helpers/time.js';

test('changes that arrive during a write wait for the pause after it', bounded(async () => {
  const writes: Array<{ start: number; end: number }> = [];
  const flusher = new Flusher(async () => {
    const start = Date.now();
    await sleep(20);
    writes.push({ start, end: Date.now() });
  }, { soonMs: 5, lazyMs: 1000, costFactor: 8, onError: () => undefined });
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

test.run();
