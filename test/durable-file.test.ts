/** lib/durable-file.ts on real files in a temp dir: durable, serialised, coalesced writes, and what a failure leaves. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DurableDataFile, DurableTextFile, DurableWriteError, nodeFs, writeFileDurably, type DurableFs, type DurableHandle } from '../lib/durable-file.js';
import { RegistryStore, fileAdapter, registryPath } from '../hub/store/registry-file.js';
import type { NodeRecord } from '../hub/registry.js';
import { withTimeout } from './helpers/time.js';

interface Ctx { dir: string }
const test = suite<Ctx>('durable file', { dir: '' });
test.before.each(async (ctx) => { ctx.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-durable-')); });
test.after.each(async (ctx) => {
  await fs.chmod(ctx.dir, 0o700).catch(() => undefined);
  await fs.rm(ctx.dir, { recursive: true, force: true });
});

type Op = 'open' | 'write' | 'sync' | 'close' | 'rename' | 'unlink';
/** Returns the error an operation on `file` should fail with, if any. */
type Fault = (op: Op, file: string) => NodeJS.ErrnoException | undefined;

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: injected`), { code });

/**
 * node:fs/promises with every call logged as "op name" (names relative to
 * `dir`, "." for the dir itself), and faults injected where `fault` says. A
 * failing write writes half its data first, as a full disk would.
 */
function spyFs(dir: string, log: string[], fault: Fault = () => undefined): DurableFs {
  const rel = (file: string) => path.relative(dir, file) || '.';
  const step = (op: Op, file: string, extra = '') => {
    log.push(`${op} ${rel(file)}${extra}`);
    const err = fault(op, file);
    if (err) throw err;
  };
  return {
    async open(file, flags, mode) {
      step('open', file, ` ${flags}`);
      const h = await nodeFs.open(file, flags, mode);
      const handle: DurableHandle = {
        async writeFile(data, encoding) {
          log.push(`write ${rel(file)}`);
          const err = fault('write', file);
          if (err) {
            await h.writeFile(data.slice(0, data.length >> 1), encoding);
            throw err;
          }
          await h.writeFile(data, encoding);
        },
        async sync() { step('sync', file); await h.sync(); },
        async close() { log.push(`close ${rel(file)}`); await h.close(); },
      };
      return handle;
    },
    async rename(from, to) { step('rename', from, ` -> ${rel(to)}`); await nodeFs.rename(from, to); },
    readFile: (file, encoding) => nodeFs.readFile(file, encoding),
    async unlink(file) { step('unlink', file); await nodeFs.unlink(file); },
  };
}

const json = <T>(file: string, opts: { fs?: DurableFs; renameRetries?: number } = {}) =>
  new DurableDataFile<T>(file, { parse: (text) => JSON.parse(text) as T, stringify: (data) => JSON.stringify(data), ...opts });

const DURABLE_WRITE = [
  'open .state.json.tmp w', 'write .state.json.tmp', 'sync .state.json.tmp', 'close .state.json.tmp',
  'rename .state.json.tmp -> state.json', 'open . r', 'sync .', 'close .',
];

async function rejection(p: Promise<unknown>): Promise<DurableWriteError> {
  const err = await withTimeout(p, 3000, 'write').then(() => undefined, (e: unknown) => e);
  assert.instance(err, DurableWriteError, 'the write rejects with a DurableWriteError');
  return err as DurableWriteError;
}

async function seed(file: string, text: string): Promise<void> {
  await fs.writeFile(file, text);
}

test('round trip: no file reads as null; a write reads back; compact JSON; no temp file left', async ({ dir }) => {
  const file = path.join(dir, 'state.json');
  const a = json<{ n: number; s: string }>(file);
  assert.is(await a.read(), null);
  await withTimeout(a.write({ n: 1, s: 'é' }), 3000, 'write');
  assert.equal(await a.read(), { n: 1, s: 'é' });
  assert.is(await fs.readFile(file, 'utf8'), '{"n":1,"s":"é"}');
  assert.equal(await fs.readdir(dir), ['state.json']);
});

test('a write fsyncs the temp file before the rename and the directory after it', async ({ dir }) => {
  const log: string[] = [];
  await withTimeout(json(path.join(dir, 'state.json'), { fs: spyFs(dir, log) }).write({ a: 1 }), 3000, 'write');
  assert.equal(log, DURABLE_WRITE);
});

test('writes asked for during a write are coalesced: one more write, of the latest data; all settle', async ({ dir }) => {
  const log: string[] = [];
  const file = path.join(dir, 'state.json');
  const a = json<{ v: number }>(file, { fs: spyFs(dir, log) });
  const settled: number[] = [];
  const writes = [1, 2, 3, 4, 5].map((v) => a.write({ v }).then(() => { settled.push(v); }));
  await withTimeout(Promise.all(writes), 3000, 'writes');
  assert.equal(log, [...DURABLE_WRITE, ...DURABLE_WRITE], 'two durable writes, one after the other');
  assert.equal(await a.read(), { v: 5 }, 'the last one wins');
  assert.equal(settled.sort(), [1, 2, 3, 4, 5]);
  // The queue drained: a later write is written on its own.
  await withTimeout(a.write({ v: 6 }), 3000, 'write');
  assert.equal(await a.read(), { v: 6 });
  assert.is(log.length, 3 * DURABLE_WRITE.length);
});

test('a concurrent reader never sees a partial file', async ({ dir }) => {
  const file = path.join(dir, 'state.json');
  const a = new DurableTextFile(file);
  // Sizes alternate between ~300 KB and a few bytes: a reader that caught a
  // truncated or half-written file would fail to parse it or see a wrong length.
  const doc = (i: number) => JSON.stringify({ i, pad: i % 2 === 0 ? 'x'.repeat(300_000) : '' });
  await a.write(doc(0));
  let writing = true;
  let reads = 0;
  const reader = (async () => {
    while (writing) {
      const text = await fs.readFile(file, 'utf8');
      const got = JSON.parse(text) as { i: number; pad: string };
      assert.is(text, doc(got.i), `read ${reads}: file ${got.i} complete`);
      reads += 1;
    }
  })();
  try {
    for (let i = 1; i <= 40; i += 1) await withTimeout(a.write(doc(i)), 3000, `write ${i}`);
  } finally {
    writing = false;
    await withTimeout(reader, 3000, 'reader');
  }
  assert.ok(reads > 40, `the reader read while writes ran (${reads} reads)`);
  assert.is(JSON.parse(await fs.readFile(file, 'utf8')).i, 40);
});

test('a write into a missing directory rejects with the target, the step and the errno', async ({ dir }) => {
  const file = path.join(dir, 'gone', 'registry.json');
  const err = await rejection(json(file).write({ a: 1 }));
  assert.is(err.errno, 'ENOENT');
  assert.ok(err.message.startsWith(`EDGEFED_ERR_FILE_WRITE: could not write ${file} (create `), err.message);
  assert.match(err.message, /the previous file is unchanged/);
  assert.is(err.replaced, false);
});

test('a read-only directory or file system (EROFS; root writes into a 0555 directory anyway, and CI runs as root) rejects and leaves the previous file', async ({ dir }) => {
  const file = path.join(dir, 'state.json');
  await seed(file, '{"old":true}');
  const log: string[] = [];
  const err = await rejection(json(file, { fs: spyFs(dir, log, (op) => (op === 'open' ? errno('EROFS') : undefined)) }).write({ old: false }));
  assert.is(err.errno, 'EROFS');
  assert.equal(log, ['open .state.json.tmp w']);
  assert.is(await fs.readFile(file, 'utf8'), '{"old":true}');
});

test('a full disk mid-write rejects, removes the half-written temp file and leaves the previous file', async ({ dir }) => {
  const file = path.join(dir, 'state.json');
  await seed(file, '{"old":true}');
  const log: string[] = [];
  const err = await rejection(json(file, { fs: spyFs(dir, log, (op) => (op === 'write' ? errno('ENOSPC') : undefined)) }).write({ pad: 'y'.repeat(1000) }));
  assert.is(err.errno, 'ENOSPC');
  assert.match(err.message, /write .*\.state\.json\.tmp: ENOSPC/);
  assert.equal(log, ['open .state.json.tmp w', 'write .state.json.tmp', 'close .state.json.tmp', 'unlink .state.json.tmp']);
  assert.is(await fs.readFile(file, 'utf8'), '{"old":true}');
  assert.equal(await fs.readdir(dir), ['state.json']);
});

test('a failed fsync of the temp file stops the write before the rename', async ({ dir }) => {
  const file = path.join(dir, 'state.json');
  await seed(file, '{"old":true}');
  const log: string[] = [];
  const fault: Fault = (op, f) => (op === 'sync' && f.endsWith('.tmp') ? errno('EIO') : undefined);
  const err = await rejection(json(file, { fs: spyFs(dir, log, fault) }).write({ old: false }));
  assert.is(err.errno, 'EIO');
  assert.not.ok(log.some((l) => l.startsWith('rename')), 'no rename after a failed fsync');
  assert.is(await fs.readFile(file, 'utf8'), '{"old":true}');
});

test('a directory that cannot be synced (EINVAL, EISDIR, EPERM) is not an error; EIO is', async ({ dir }) => {
  const file = path.join(dir, 'state.json');
  for (const code of ['EINVAL', 'EISDIR', 'EPERM']) {
    const onOpen: Fault = (op, f) => (op === 'open' && f === dir && code === 'EISDIR' ? errno(code) : undefined);
    const onSync: Fault = (op, f) => (op === 'sync' && f === dir ? errno(code) : undefined);
    for (const fault of [onOpen, onSync]) {
      await withTimeout(json(file, { fs: spyFs(dir, [], fault) }).write({ code }), 3000, code);
      assert.equal(JSON.parse(await fs.readFile(file, 'utf8')), { code });
    }
  }
  const log: string[] = [];
  const err = await rejection(json(file, { fs: spyFs(dir, log, (op, f) => (op === 'sync' && f === dir ? errno('EIO') : undefined)) }).write({ v: 'new' }));
  assert.is(err.errno, 'EIO');
  assert.is(err.replaced, true);
  assert.match(err.message, /the new file is in place but may not survive a power cut/);
  assert.equal(log.slice(-1), ['close .'], 'the directory handle is closed');
  assert.equal(JSON.parse(await fs.readFile(file, 'utf8')), { v: 'new' });
});

test('a failed write does not stall the queue: the write queued behind it still happens', async ({ dir }) => {
  const file = path.join(dir, 'state.json');
  let opens = 0;
  const a = json<{ v: number }>(file, { fs: spyFs(dir, [], (op, f) => (op === 'open' && f.endsWith('.tmp') && ++opens === 1 ? errno('EIO') : undefined)) });
  const first = a.write({ v: 1 });
  const second = a.write({ v: 2 });
  assert.is((await rejection(first)).errno, 'EIO');
  await withTimeout(second, 3000, 'second write');
  assert.equal(await a.read(), { v: 2 });
});

test('a busy rename (EBUSY, as Windows gives) is retried only when renameRetries allows', async ({ dir }) => {
  const file = path.join(dir, 'state.json');
  const log: string[] = [];
  let renames = 0;
  const busyOnce: Fault = (op) => (op === 'rename' && ++renames === 1 ? errno('EBUSY') : undefined);
  await withTimeout(json(file, { fs: spyFs(dir, log, busyOnce), renameRetries: 2 }).write({ v: 1 }), 3000, 'write');
  assert.is(log.filter((l) => l.startsWith('rename')).length, 2);
  assert.equal(JSON.parse(await fs.readFile(file, 'utf8')), { v: 1 });
  renames = 0;
  const err = await rejection(json(file, { fs: spyFs(dir, [], busyOnce), renameRetries: 0 }).write({ v: 2 }));
  assert.is(err.errno, 'EBUSY');
  assert.equal(JSON.parse(await fs.readFile(file, 'utf8')), { v: 1 });
});

test('with a mode (a private key), a leftover temp file is removed and the new one is created exclusively with that mode', async ({ dir }) => {
  const file = path.join(dir, 'key.pem');
  const temp = `${file}.1234.tmp`;
  await fs.writeFile(temp, 'left by a crash', { mode: 0o644 });
  const log: string[] = [];
  await writeFileDurably(file, 'secret', { fs: spyFs(dir, log), tempFile: temp, mode: 0o600 });
  assert.equal(log, ['unlink key.pem.1234.tmp', 'open key.pem.1234.tmp wx', 'write key.pem.1234.tmp', 'sync key.pem.1234.tmp', 'close key.pem.1234.tmp', 'rename key.pem.1234.tmp -> key.pem', 'open . r', 'sync .', 'close .']);
  assert.is(await fs.readFile(file, 'utf8'), 'secret');
  assert.is((await fs.stat(file)).mode & 0o777, 0o600);
});

test('registry: a stale .registry.json.tmp from a crash is ignored on load and replaced by the next write', async ({ dir }) => {
  const record = { node_id: 'edge-1', status: 'active' } as unknown as NodeRecord;
  const before = new RegistryStore(fileAdapter(dir));
  await before.save([record], 1);
  const good = await fs.readFile(registryPath(dir), 'utf8');
  // A crash mid-write: a truncated temp file, longer than the next document.
  const stale = path.join(dir, '.registry.json.tmp');
  await seed(stale, `${good.slice(0, -10)}${' '.repeat(5000)}`);
  const after = new RegistryStore(fileAdapter(dir));
  assert.equal((await after.load()).map((r) => r.node_id), ['edge-1']);
  await withTimeout(after.save([], 2), 3000, 'save');
  assert.equal(JSON.parse(await fs.readFile(registryPath(dir), 'utf8')), { format: 1, saved_at: 2, nodes: {} });
  assert.equal((await fs.readdir(dir)).sort(), ['registry.json'], 'the temp file was the one written and renamed');
});

test.run();
