/**
 * A trigger leaves the hub only once the attempt it carries is stored: a
 * hub that dies in between leaves no node running work its store does not
 * know of, so a successor (or the restarted hub) cannot dispatch it twice.
 */
import type { Adapter } from 'lowdb';
import { Memory } from 'lowdb';
import * as assert from 'uvu/assert';
import type { WpkFile } from '../hub/wpk/store.js';
import { rigSuite, wpkRig } from './helpers/wpk-rig.js';
import { waitFor } from './helpers/time.js';

/** A memory adapter whose writes wait for `release()`, or fail while `failing`. */
function gatedAdapter() {
  const inner = new Memory<WpkFile>();
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => undefined;
  const adapter = {
    failing: false,
    writes: [] as WpkFile[],
    hold() { gate = new Promise((r) => { open = r; }); },
    release() { open(); },
    read: () => inner.read(),
    async write(data: WpkFile) {
      await gate;
      if (adapter.failing) throw new Error('disk full');
      adapter.writes.push(structuredClone(data));
      await inner.write(data);
    },
  };
  return adapter satisfies Adapter<WpkFile> & Record<string, unknown>;
}

const test = rigSuite('wpk: triggers after their attempt is stored');

test('a new attempt is not sent while the write that records it waits', async (ctx) => {
  const store = gatedAdapter();
  const rig = ctx.use({ adapter: store, wpk: { triggerAfterWrite: true } });
  rig.node('n1');
  rig.node('n2');
  const w = await rig.create({ mode: 'one' });
  await waitFor(() => rig.triggers(w.wpk_id).length === 1, { label: 'attempt 1 sent' });
  const first = rig.triggers(w.wpk_id)[0]!.assignee!;
  store.hold();
  rig.send(first, w.wpk_id, 1, 'rejected', { error: 'busy' });
  await new Promise((r) => setTimeout(r, 50));
  assert.is(rig.triggers(w.wpk_id).length, 1, 'attempt 2 waits for its write');
  store.release();
  await waitFor(() => rig.triggers(w.wpk_id).length === 2, { label: 'attempt 2 sent after the write' });
  const stored = store.writes.at(-1)!.wpks.find((x) => x.wpk_id === w.wpk_id)!;
  assert.is(stored.attempt, 2, 'the store had attempt 2 before its trigger left');
});

test('a failed write holds the trigger until the retry stores it', async (ctx) => {
  const store = gatedAdapter();
  const rig = ctx.use({ adapter: store, wpk: { triggerAfterWrite: true, flush: { retryMinMs: 10, retryMaxMs: 20 } } });
  rig.node('n1');
  const w = await rig.create({ mode: 'one', max_attempts: 3 });
  await waitFor(() => rig.triggers(w.wpk_id).length === 1, { label: 'attempt 1 sent' });
  store.failing = true;
  rig.send('n1', w.wpk_id, 1, 'rejected', { error: 'busy' });
  rig.advance(3000); // busy rest over: n1 may take attempt 2
  rig.service.nodeChanged('n1');
  await new Promise((r) => setTimeout(r, 80));
  assert.is(rig.triggers(w.wpk_id).length, 1, 'nothing leaves while the store refuses');
  store.failing = false;
  await waitFor(() => rig.triggers(w.wpk_id).length === 2, { label: 'sent once stored' });
  await new Promise((r) => setTimeout(r, 50));
  assert.is(rig.triggers(w.wpk_id).length, 2, 'sent once, not once per retry');
});

test('with triggerAfterWrite off (the files\' default) the trigger leaves at once', async () => {
  const rig = wpkRig({ wpk: { triggerAfterWrite: false } });
  try {
    rig.node('n1');
    const w = await rig.create({});
    assert.is(rig.triggers(w.wpk_id).length, 1);
  } finally {
    await rig.stop();
  }
});

test.run();
