/**
 * The agent's offline spool and outbox without a broker. One contract suite
 * runs against the in-memory and the file-backed spool (MQTT.js's
 * abstract_store idea); then what only a file does (restart, torn line,
 * compaction); then the outbox's ordering rules against a fake MQTT client
 * whose acknowledgements the test hands out.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ExecutionOutbox, REPLAY_BATCH } from '../agent/outbox.js';
import { FileSpoolStore, SPOOL_FILE } from '../agent/spool-file.js';
import { Spool, type SpoolStore } from '../agent/spool.js';
import { jsonLogger, type Logger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import type { ExecutionUpdate } from '../lib/wire.js';
import { validators } from '../schemas/index.js';

const NODE = 'edge-001';
let tsSeq = 0;

function update(wpkId: string, state: ExecutionUpdate['state'] = 'succeeded', node = NODE): ExecutionUpdate {
  return { wpk_id: wpkId, node_id: node, attempt: 1, state, ts: ++tsSeq };
}

function recorder(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, log: jsonLogger('debug', {}, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }) };
}

const ids = (spool: Spool, n = 1000) => spool.peek(n).map((e) => e.update.wpk_id);

interface Ctx { dir: string }

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'edgefed-spool-test-'));
}

/** The same expectations for both kinds of spool. */
function contract(name: string, makeStore: (dir: string) => SpoolStore | undefined): void {
  const test = suite<Ctx>(`spool contract: ${name}`, { dir: '' });
  test.before.each(async (ctx) => { ctx.dir = await tempDir(); });
  test.after.each(async (ctx) => { await rm(ctx.dir, { recursive: true, force: true }); });
  const make = (ctx: Ctx, max = 100) => {
    const rec = recorder();
    const spool = new Spool({ nodeId: NODE, max, log: rec.log, store: makeStore(ctx.dir) });
    spool.open();
    return { spool, lines: rec.lines };
  };

  test('first in, first out; peek does not remove; removeThrough removes up to an entry', (ctx) => {
    const { spool } = make(ctx);
    for (const id of ['a', 'b', 'c']) spool.append(update(id));
    assert.equal(ids(spool, 2), ['a', 'b']);
    assert.equal(spool.size, 3);
    spool.removeThrough(spool.peek(2)[1]!);
    assert.equal(ids(spool), ['c']);
    spool.removeThrough(spool.peek(1)[0]!);
    assert.equal(spool.size, 0);
  });

  test('bounded: the oldest are dropped, one warning per overflow episode, a summary when drained', (ctx) => {
    const { spool, lines } = make(ctx, 3);
    for (const id of ['a', 'b', 'c', 'd', 'e']) spool.append(update(id));
    assert.equal(ids(spool), ['c', 'd', 'e']);
    const warnings = () => lines.filter((l) => l.level === 40).map((l) => String(l.msg));
    assert.equal(warnings().length, 1);
    assert.match(warnings()[0]!, /spool full/);
    spool.removeThrough(spool.peek(3)[2]!);
    assert.match(warnings()[1]!, /drained/);
    assert.equal(lines.filter((l) => /drained/.test(String(l.msg)))[0]!.dropped, 2);
    for (const id of ['f', 'g', 'h', 'i']) spool.append(update(id));
    assert.equal(warnings().filter((w) => /spool full/.test(w)).length, 2, 'a new episode warns again');
  });

  test('entries dropped while a batch is in flight: removeThrough never removes newer ones', (ctx) => {
    const { spool } = make(ctx, 2);
    spool.append(update('a'));
    spool.append(update('b'));
    const batch = spool.peek(2);
    spool.append(update('c')); // drops a
    spool.append(update('d')); // drops b
    spool.removeThrough(batch[1]!);
    assert.equal(ids(spool), ['c', 'd']);
  });

  test.run();
}

contract('in memory', () => undefined);
contract('file', (dir) => new FileSpoolStore(dir));

const file = suite<Ctx>('file spool', { dir: '' });
file.before.each(async (ctx) => { ctx.dir = await tempDir(); });
file.after.each(async (ctx) => { await rm(ctx.dir, { recursive: true, force: true }); });

function open(dir: string, max = 100) {
  const rec = recorder();
  const spool = new Spool({ nodeId: NODE, max, log: rec.log, store: new FileSpoolStore(dir) });
  spool.open();
  return { spool, lines: rec.lines };
}

const fileLines = async (dir: string) => (await readFile(path.join(dir, SPOOL_FILE), 'utf8')).split('\n').filter(Boolean);

file('a new spool on the same directory gets the entries in order; JSON lines on disk', async (ctx) => {
  const first = open(ctx.dir).spool;
  first.append(update('a', 'running'));
  first.append(update('a', 'succeeded'));
  const lines = await fileLines(ctx.dir);
  assert.equal(lines.length, 2);
  for (const line of lines) assert.equal(validators.executionUpdate(JSON.parse(line)).ok, true);
  const second = open(ctx.dir).spool;
  assert.equal(second.peek(10).map((e) => `${e.update.wpk_id} ${e.update.state}`), ['a running', 'a succeeded']);
});

file('the directory is created on the first write only, and the file removed once drained', async (ctx) => {
  const dir = path.join(ctx.dir, 'nested', NODE);
  const { spool } = open(dir);
  assert.not.ok(existsSync(dir), 'opening touches nothing');
  spool.append(update('a'));
  assert.ok(existsSync(path.join(dir, SPOOL_FILE)));
  spool.removeThrough(spool.peek(1)[0]!);
  assert.not.ok(existsSync(path.join(dir, SPOOL_FILE)));
});

file('a torn last line is ignored, and the file repaired so the next append is readable', async (ctx) => {
  open(ctx.dir).spool.append(update('a'));
  await appendFile(path.join(ctx.dir, SPOOL_FILE), '{"wpk_id":"torn","node_');
  const { spool, lines } = open(ctx.dir);
  assert.equal(ids(spool), ['a']);
  assert.ok(lines.some((l) => l.torn_line === true && l.level === 30));
  spool.append(update('b'));
  assert.equal(ids(open(ctx.dir).spool), ['a', 'b']);
  assert.equal((await fileLines(ctx.dir)).length, 2);
});

file('unreadable lines and other nodes\' updates are skipped with a warning', async (ctx) => {
  const good = JSON.stringify(update('a'));
  const content = [good, 'garbage', JSON.stringify({ hello: 1 }), JSON.stringify(update('x', 'failed', 'edge-999')), JSON.stringify(update('b')), ''].join('\n');
  await writeFile(path.join(ctx.dir, SPOOL_FILE), content);
  const { spool, lines } = open(ctx.dir);
  assert.equal(ids(spool), ['a', 'b']);
  const warning = lines.find((l) => l.level === 40)!;
  assert.equal({ unreadable: warning.unreadable, foreign: warning.foreign }, { unreadable: 2, foreign: 1 });
  assert.equal((await fileLines(ctx.dir)).length, 2, 'rewritten without them');
});

file('a restart keeps only the newest `max` entries', async (ctx) => {
  const first = open(ctx.dir, 10).spool;
  for (let i = 0; i < 6; i++) first.append(update(`w${i}`));
  assert.equal(ids(open(ctx.dir, 4).spool), ['w2', 'w3', 'w4', 'w5']);
  assert.equal((await fileLines(ctx.dir)).length, 4);
});

file('the file is compacted at twice the bound, so disk use stays bounded', async (ctx) => {
  const { spool } = open(ctx.dir, 3);
  for (let i = 0; i < 20; i++) {
    spool.append(update(`w${i}`));
    assert.ok((await fileLines(ctx.dir)).length <= 6, `after ${i + 1} appends`);
  }
  assert.equal(ids(open(ctx.dir, 3).spool), ['w17', 'w18', 'w19']);
});

file('checkpoint leaves exactly the pending entries on disk', async (ctx) => {
  const { spool } = open(ctx.dir);
  for (const id of ['a', 'b', 'c']) spool.append(update(id));
  spool.removeThrough(spool.peek(1)[0]!);
  assert.equal((await fileLines(ctx.dir)).length, 3, 'removal alone does not rewrite');
  spool.checkpoint();
  assert.equal((await fileLines(ctx.dir)).map((l) => (JSON.parse(l) as ExecutionUpdate).wpk_id), ['b', 'c']);
});

file('a spool directory that cannot be written logs one error and keeps the updates in memory', async (ctx) => {
  const blocker = path.join(ctx.dir, 'not-a-dir');
  await writeFile(blocker, 'x');
  const { spool, lines } = open(blocker);
  spool.append(update('a'));
  spool.append(update('b'));
  assert.equal(ids(spool), ['a', 'b']);
  assert.equal(lines.filter((l) => l.level === 50).length, 1);
});

const outbox = suite('execution outbox');

interface Sent { update: ExecutionUpdate; topic: string; ack(err?: Error): void }

/** The slice of an mqtt.js client the outbox uses; the test decides when PUBACKs arrive. */
function fakeClient(): { client: MqttClient; sent: Sent[]; pending: Sent[]; ackAll(err?: Error): void; state: { connected: boolean; disconnecting: boolean } } {
  const sent: Sent[] = [];
  const pending: Sent[] = [];
  const state = { connected: true, disconnecting: false };
  const client = {
    get connected() { return state.connected; },
    get disconnecting() { return state.disconnecting; },
    publish(topic: string, payload: string, opts: { qos: number; retain: boolean }, cb: (err?: Error) => void) {
      assert.equal(opts, { qos: 1, retain: false });
      const item: Sent = { topic, update: JSON.parse(payload) as ExecutionUpdate, ack: (err) => cb(err) };
      sent.push(item);
      pending.push(item);
      return client;
    },
  };
  return { client: client as unknown as MqttClient, sent, pending, state, ackAll: (err) => { for (const p of pending.splice(0)) p.ack(err); } };
}

function makeOutbox(max = 1000) {
  const rec = recorder();
  const spool = new Spool({ nodeId: NODE, max, log: rec.log });
  return { spool, outbox: new ExecutionOutbox(spool, topics(), rec.log), logs: rec.lines };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const sentIds = (sent: Sent[]) => sent.map((s) => s.update.wpk_id);

outbox('connected with an empty spool: published at once, on the execution topic', () => {
  const { outbox: box, spool } = makeOutbox();
  const fake = fakeClient();
  box.online(fake.client);
  box.send(update('a'));
  assert.equal(fake.sent.map((s) => s.topic), ['edgefed/v1/nodes/edge-001/executions/a']);
  assert.equal(spool.size, 0);
});

outbox('offline updates are spooled, then replayed in order before anything sent during the replay', async () => {
  const { outbox: box, spool } = makeOutbox();
  for (let i = 0; i < REPLAY_BATCH + 10; i++) box.send(update(`old${i}`));
  assert.equal(spool.size, REPLAY_BATCH + 10);
  const fake = fakeClient();
  box.online(fake.client);
  assert.equal(fake.sent.length, REPLAY_BATCH, 'one batch in flight');
  box.send(update('new')); // produced mid-replay: queues behind
  assert.equal(fake.sent.length, REPLAY_BATCH);
  fake.ackAll();
  await tick();
  fake.ackAll();
  await tick();
  assert.equal(sentIds(fake.sent), [...Array.from({ length: REPLAY_BATCH + 10 }, (_, i) => `old${i}`), 'new']);
  assert.equal(spool.size, 0);
  box.send(update('hot'));
  assert.equal(sentIds(fake.sent).at(-1), 'hot', 'back on the direct path');
});

outbox('a batch interrupted by a disconnect completes after the reconnect; nothing is published twice', async () => {
  const { outbox: box, spool } = makeOutbox();
  for (const id of ['a', 'b', 'c']) box.send(update(id));
  const fake = fakeClient();
  box.online(fake.client);
  assert.equal(sentIds(fake.sent), ['a', 'b', 'c']);
  fake.state.connected = false;
  box.offline();
  box.send(update('d')); // offline: spooled behind the unacknowledged batch
  box.online(fake.client); // reconnect; mqtt.js re-sends a, b, c itself
  assert.equal(sentIds(fake.sent), ['a', 'b', 'c'], 'no second replay while the first is waiting');
  fake.state.connected = true;
  fake.ackAll();
  await tick();
  assert.equal(sentIds(fake.sent), ['a', 'b', 'c', 'd']);
  fake.ackAll();
  await tick();
  assert.equal(spool.size, 0);
});

outbox('an update the client gives up on is spooled when the connection is going, dropped with a warning when not', () => {
  const { outbox: box, spool, logs } = makeOutbox();
  const fake = fakeClient();
  box.online(fake.client);
  box.send(update('a'));
  fake.ackAll(new Error('refused'));
  assert.equal(spool.size, 0);
  assert.ok(logs.some((l) => l.level === 40 && /dropped/.test(String(l.msg))));
  box.send(update('b'));
  fake.state.disconnecting = true;
  fake.ackAll(new Error('Connection closed'));
  assert.equal(ids(spool), ['b']);
});

outbox('after close nothing is replayed; updates stay spooled', async () => {
  const { outbox: box, spool } = makeOutbox();
  box.send(update('a'));
  box.close();
  const fake = fakeClient();
  box.online(fake.client);
  box.send(update('b'));
  await tick();
  assert.equal(fake.sent, []);
  assert.equal(ids(spool), ['a', 'b']);
});

file.run();
outbox.run();
