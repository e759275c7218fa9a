/** The FakeClock the WPK and agent tests drive time with (test/helpers/clock.ts). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeClock } from './helpers/clock.js';

test('advance fires due timers in due order (ties in order set), at their due time, including ones set on the way', () => {
  const clock = new FakeClock(1000);
  const seen: string[] = [];
  clock.setTimeout(() => seen.push(`b@${clock.now()}`), 20);
  clock.setTimeout(() => {
    seen.push(`a@${clock.now()}`);
    clock.setTimeout(() => seen.push(`c@${clock.now()}`), 5); // due at 1015, inside the window
    clock.setTimeout(() => seen.push(`late@${clock.now()}`), 100);
  }, 10);
  clock.setTimeout(() => seen.push(`b2@${clock.now()}`), 20);
  assert.is(clock.advance(20), 4);
  assert.equal(seen, ['a@1010', 'c@1015', 'b@1020', 'b2@1020']);
  assert.equal([clock.now(), clock.pending], [1020, 1]);
});

test('a cleared timer never fires; nothing fires before its time; time never goes back', () => {
  const clock = new FakeClock(0);
  let fired = 0;
  const h = clock.setTimeout(() => { fired += 1; }, 10);
  clock.setTimeout(() => { fired += 10; }, 10);
  clock.advance(9);
  assert.is(fired, 0);
  clock.clearTimeout(h);
  clock.clearTimeout(undefined);
  clock.advanceTo(10);
  assert.is(fired, 10);
  assert.throws(() => clock.advance(-1), /does not go back/);
});

test.run();
