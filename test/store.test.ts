/** The Store seam: the contract suite on the lowdb files (on disk and in memory), and the hub's node journal. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Memory } from 'lowdb';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { NodeJournal } from '../hub/journal.js';
import { Registry } from '../hub/registry.js';
import { LowdbStore } from '../hub/store/lowdb.js';
import type { RegistryFile } from '../hub/store/registry-file.js';
import type { WpkFile } from '../hub/wpk/store.js';
import { storeContract } from './helpers/store-contract.js';

storeContract('lowdb files', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-store-'));
  return { store: new LowdbStore({ dataDir: dir }), reopen: () => new LowdbStore({ dataDir: dir }), close: () => fs.rm(dir, { recursive: true, force: true }) };
});

storeContract('lowdb in memory', async () => {
  const registry = new Memory<RegistryFile>();
  const wpks = new Memory<WpkFile>();
  return { store: new LowdbStore({ registry, wpks }), reopen: () => new LowdbStore({ registry, wpks }), close: async () => undefined };
});

const journal = suite('node journal');

function rig() {
  const urgencies: string[] = [];
  const registry = new Registry();
  for (const id of ['a', 'b', 'c']) registry.applyRegistration({ node_id: id, capabilities: ['m'], boot_id: 'b', ts: 1 }, { now: 1, live: true });
  return { j: new NodeJournal((u) => urgencies.push(u)), urgencies, get: (id: string) => registry.get(id) };
}

journal('a node changed many times is written once, whole; liveness of an upserted node is not sent apart', () => {
  const { j, urgencies, get } = rig();
  j.liveness('a');
  j.upserted('a');
  j.liveness('a');
  j.liveness('b');
  const changes = j.take(get);
  assert.equal(changes.upserted.map((r) => r.node_id), ['a']);
  assert.equal(changes.liveness.map((l) => l.node_id), ['b']);
  assert.equal(urgencies, ['liveness', 'durable', 'liveness'], 'a durable change is asked to be written soon');
  assert.ok(j.empty, 'taken: nothing pending');
});

journal('a removal wins over an earlier upsert, and an upsert after a removal wins', () => {
  const { j, get } = rig();
  j.upserted('a');
  j.removed('a');
  j.removed('b');
  j.upserted('b');
  const changes = j.take(get);
  assert.equal(changes.removed, ['a']);
  assert.equal(changes.upserted.map((r) => r.node_id), ['b']);
});

journal('a failed write puts its changes back, behind what changed since', () => {
  const { j, get } = rig();
  j.upserted('a');
  j.liveness('b');
  j.removed('c');
  const failed = j.take(get);
  j.upserted('c'); // came back while the write was failing
  j.putBack(failed);
  const retry = j.take(get);
  assert.equal(retry.upserted.map((r) => r.node_id).sort(), ['a', 'c']);
  assert.equal(retry.removed, [], 'the newer upsert of c is kept, not the stale removal');
  assert.equal(retry.liveness.map((l) => l.node_id), ['b']);
});

journal.run();
