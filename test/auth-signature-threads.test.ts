/**
 * auth/signature-threads.ts: signature checks batched to worker threads.
 * Right answers for every key kind (the keys and their options cross the
 * thread boundary), one thread for a turn's batch, idle threads ending,
 * checks in flight surviving close(), and a process not held open by them.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { libuvPoolChecker, SignatureThreads } from '../auth/index.js';
import { verificationKey, type VerificationKey } from '../auth/signature.js';
import { bounded } from './helpers/scope.js';
import { sleep, waitFor } from './helpers/time.js';

interface Case { alg: string; key: VerificationKey; sign(data: Buffer): Buffer }

async function makeCase(alg: string, type: 'ed25519' | 'ec' | 'rsa', importAs: Parameters<typeof crypto.webcrypto.subtle.importKey>[2]): Promise<Case> {
  const { publicKey, privateKey } = crypto.generateKeyPairSync(type as 'ec', {
    namedCurve: 'P-256', modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  } as crypto.ECKeyPairOptions<'pem', 'pem'>);
  const spki = crypto.createPublicKey(publicKey).export({ type: 'spki', format: 'der' });
  const cryptoKey = await crypto.webcrypto.subtle.importKey('spki', spki, importAs, false, ['verify']);
  const key = verificationKey(cryptoKey, alg);
  const priv = crypto.createPrivateKey(privateKey);
  const sign = (data: Buffer): Buffer => {
    if (alg === 'EdDSA') return crypto.sign(null, data, priv);
    if (alg === 'ES256') return crypto.sign('sha256', data, { key: priv, dsaEncoding: 'ieee-p1363' });
    if (alg === 'PS256') return crypto.sign('sha256', data, { key: priv, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    return crypto.sign('sha256', data, priv);
  };
  return { alg, key, sign };
}

const cases = await Promise.all([
  makeCase('EdDSA', 'ed25519', { name: 'Ed25519' }),
  makeCase('ES256', 'ec', { name: 'ECDSA', namedCurve: 'P-256' }),
  makeCase('RS256', 'rsa', { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }),
  makeCase('PS256', 'rsa', { name: 'RSA-PSS', hash: 'SHA-256' }),
]);
const ed = cases[0]!;

/** `n` signed messages; every third one with a flipped signature byte. */
function checks(c: Case, n: number): Array<{ data: Buffer; signature: Buffer; valid: boolean }> {
  return Array.from({ length: n }, (_, i) => {
    const data = Buffer.from(`header.payload-${i}`);
    const signature = c.sign(data);
    const valid = i % 3 !== 0;
    if (!valid) signature[5] = signature[5]! ^ 0xff;
    return { data, signature, valid };
  });
}

const test = suite('auth: signature threads');

test('valid and forged signatures of every key kind get the pool\'s answers', bounded(async (scope) => {
  const threads = new SignatureThreads({ threads: 2 });
  scope.defer(() => threads.close());
  for (const c of cases) {
    const list = checks(c, 12);
    const got = await Promise.all(list.map((x) => threads.check(c.key, x.data, x.signature)));
    const pool = await Promise.all(list.map((x) => libuvPoolChecker.check(c.key, x.data, x.signature)));
    assert.equal(got, list.map((x) => x.valid), `${c.alg}: thread answers`);
    assert.equal(pool, got, `${c.alg}: the pool agrees`);
  }
  // A signature of the wrong size is invalid, not an error.
  assert.is(await threads.check(ed.key, Buffer.from('x'), Buffer.alloc(3)), false);
}, { timeoutMs: 15_000 }));

test('the checks of one turn go to one thread in one batch, keys of two kinds mixed', bounded(async (scope) => {
  const threads = new SignatureThreads({ threads: 2 });
  scope.defer(() => threads.close());
  const mixed = [...checks(ed, 150).map((x) => ({ ...x, c: ed })), ...checks(cases[2]!, 50).map((x) => ({ ...x, c: cases[2]! }))];
  const got = await Promise.all(mixed.map((x) => threads.check(x.c.key, x.data, x.signature)));
  assert.equal(got, mixed.map((x) => x.valid));
  assert.is(threads.running, 1, 'one batch, one thread');
}, { timeoutMs: 15_000 }));

test('a batch that cannot be posted to a thread (a key that does not clone) is checked on the pool, the process unharmed', bounded(async (scope) => {
  const threads = new SignatureThreads({ threads: 1 });
  scope.defer(() => threads.close());
  // crypto.verify ignores the extra property; structured clone refuses a function.
  const uncloneable = { digest: null, key: { key: ed.key.key, refresh: () => undefined } } as unknown as VerificationKey;
  const [bad, good] = checks(ed, 2);
  assert.equal(await Promise.all([
    threads.check(uncloneable, bad!.data, bad!.signature),
    threads.check(uncloneable, good!.data, good!.signature),
  ]), [false, true]);
  assert.ok(await threads.check(ed.key, good!.data, good!.signature), 'the next batch still goes to the thread');
  assert.is(threads.running, 1);
}, { timeoutMs: 10_000 }));

test('a thread with nothing to do ends; the next check starts one again', bounded(async (scope) => {
  const threads = new SignatureThreads({ threads: 1, idleMs: 50 });
  scope.defer(() => threads.close());
  const [a] = checks(ed, 2).slice(1);
  assert.ok(await threads.check(ed.key, a!.data, a!.signature));
  assert.is(threads.running, 1);
  await waitFor(() => threads.running === 0, { timeoutMs: 3000, label: 'the idle thread ended' });
  assert.ok(await threads.check(ed.key, a!.data, a!.signature), 'a check after the idle end');
  assert.is(threads.running, 1);
}, { timeoutMs: 10_000 }));

test('close() with checks in flight: every one is still answered, rightly', bounded(async (scope) => {
  const threads = new SignatureThreads({ threads: 1 });
  scope.defer(() => threads.close());
  const list = checks(ed, 300);
  const pending = list.map((x) => threads.check(ed.key, x.data, x.signature));
  await new Promise((resolve) => setImmediate(resolve)); // the batch has gone to the thread
  assert.is(threads.running, 1);
  await threads.close();
  assert.is(threads.running, 0);
  assert.equal(await Promise.all(pending), list.map((x) => x.valid));
}, { timeoutMs: 15_000 }));

test('threads do not hold a process open that has nothing else to do', bounded(async (scope) => {
  const module = fileURLToPath(new URL('../auth/signature-threads.ts', import.meta.url));
  const signatureModule = fileURLToPath(new URL('../auth/signature.ts', import.meta.url));
  // Checks one signature on a thread (idle end at the default 60 s) and returns: the process must exit at once.
  const script = `
    import crypto from 'node:crypto';
    const { SignatureThreads } = await import(${JSON.stringify(module)});
    const { verificationKey } = await import(${JSON.stringify(signatureModule)});
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
    const ck = await crypto.webcrypto.subtle.importKey('spki', publicKey.export({ type: 'spki', format: 'der' }), { name: 'Ed25519' }, false, ['verify']);
    const data = Buffer.from('x');
    const ok = await new SignatureThreads({ threads: 1 }).check(verificationKey(ck, 'EdDSA'), data, crypto.sign(null, data, privateKey));
    console.log(ok ? 'checked' : 'wrong');`;
  // A file, not -e: an -e module ends its process when evaluated, which would hide a held handle.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-threads-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'check-once.mts');
  await fs.writeFile(file, script);
  const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const code = await Promise.race([
    new Promise<number | null>((resolve) => child.once('exit', resolve)),
    sleep(8000).then(() => 'hung' as const),
  ]);
  if (code === 'hung') child.kill('SIGKILL');
  assert.is(code, 0, `exit code (output: ${out.trim()})`);
  assert.match(out, /checked/);
}, { timeoutMs: 12_000 }));

test.run();
