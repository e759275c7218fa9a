/**
 * Signature checks on worker threads of their own, batched per turn of the
 * event loop: the checks asked for in one turn (the CONNECTs one read from
 * the sockets brought) travel to a thread in one message and come back in
 * one, so a connect storm wakes the broker's main thread once per batch
 * rather than once per token.
 *
 * Why not libuv's pool (crypto.verify with a callback): each pool job wakes
 * a pool thread, and on a small machine that thread takes the core the
 * event loop was running on; in a first-connect storm on 2 cores the main
 * thread's CPU per connect grew by ~60 us with the pool, ~10-20 us this way
 * (bench/RESULTS.md, auth-storm). The pool stays the fallback whenever a
 * thread cannot be had.
 *
 * Threads start on the first check, hold the process open only while checks
 * are in flight (ref'd then, unref'd when idle), and end after `idleMs`
 * without work, so an idle hub or a test keeps no thread around.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { VerificationKey } from './signature.js';

export interface SignatureChecker {
  /** Resolves whether `signature` is valid for `data` under `key`; never rejects. */
  check(key: VerificationKey, data: Buffer, signature: Buffer): Promise<boolean>;
}

/** One libuv pool job per check (the callback form of crypto.verify). */
export const libuvPoolChecker: SignatureChecker = {
  check(key, data, signature) {
    return new Promise((resolve) => {
      crypto.verify(key.digest, data, key.key, signature, (err, ok) => resolve(err === null && ok));
    });
  },
};

/**
 * Plain CommonJS evaluated in the worker (no loader: the same under tsx and
 * from dist/). A batch: new keys `[id, key, digest]`, then one packed buffer
 * with 5 numbers per check in `spans`: key id, data offset and length,
 * signature offset and length. The answers: one byte per check, 1 = valid,
 * in parts (`from` = the index of the part's first check).
 */
const ANSWER_EVERY_MS = 1;
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { verify } = require('node:crypto');
const keys = new Map();
parentPort.on('message', (batch) => {
  for (const [id, key, digest] of batch.keys) keys.set(id, { key, digest });
  const bytes = new Uint8Array(batch.bytes);
  const spans = batch.spans;
  const n = spans.length / 5;
  let from = 0;
  let out = new Uint8Array(n);
  let postedAt = performance.now();
  for (let i = 0, s = 0; i < n; i += 1, s += 5) {
    const k = keys.get(spans[s]);
    try {
      const data = bytes.subarray(spans[s + 1], spans[s + 1] + spans[s + 2]);
      const signature = bytes.subarray(spans[s + 3], spans[s + 3] + spans[s + 4]);
      out[i - from] = k !== undefined && verify(k.digest, data, k.key, signature) ? 1 : 0;
    } catch {
      out[i - from] = 0;
    }
    // Answers go back every ${ANSWER_EVERY_MS} ms of work, so the event loop goes on while the rest is checked.
    if (i + 1 < n && performance.now() - postedAt >= ${ANSWER_EVERY_MS}) {
      parentPort.postMessage({ seq: batch.seq, from, out: out.subarray(0, i + 1 - from) });
      from = i + 1;
      out = new Uint8Array(n - from);
      postedAt = performance.now();
    }
  }
  parentPort.postMessage({ seq: batch.seq, from, out });
});`;

interface Check {
  key: VerificationKey;
  data: Buffer;
  signature: Buffer;
  answer: (ok: boolean) => void;
}

export interface SignatureThreadsOptions {
  /** Threads at most (default: one per core but one, 1 to 4). */
  threads?: number;
  /** A thread with nothing to do for this long ends (default 60 s). */
  idleMs?: number;
}

export const DEFAULT_IDLE_MS = 60_000;

/** One per core but one (the event loop's), at least 1, at most 4: a thread checks ~15,000 Ed25519 signatures/s. */
export function defaultThreadCount(): number {
  return Math.max(1, Math.min(4, os.availableParallelism() - 1));
}

export class SignatureThreads implements SignatureChecker {
  readonly #threads: CheckThread[] = [];
  readonly #max: number;
  readonly #idleMs: number;
  #queued: Check[] = [];
  #flushScheduled = false;
  /** Until this epoch ms, checks go to the pool: a thread just failed to start or died. */
  #poolUntil = 0;

  constructor(options: SignatureThreadsOptions = {}) {
    this.#max = options.threads ?? defaultThreadCount();
    if (!Number.isInteger(this.#max) || this.#max < 1) throw new Error(`signature threads: ${String(options.threads)} is not a positive integer`);
    this.#idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  }

  /** Threads running now (for tests and metrics). */
  get running(): number {
    return this.#threads.length;
  }

  check(key: VerificationKey, data: Buffer, signature: Buffer): Promise<boolean> {
    if (Date.now() < this.#poolUntil) return libuvPoolChecker.check(key, data, signature);
    return new Promise((answer) => {
      this.#queued.push({ key, data, signature, answer });
      if (this.#flushScheduled) return;
      this.#flushScheduled = true;
      // After this turn's I/O callbacks: every CONNECT read in it joins the batch.
      setImmediate(() => this.#flush());
    });
  }

  /** Ends every thread now; checks in flight go to the pool. */
  async close(): Promise<void> {
    await Promise.all(this.#threads.splice(0).map((t) => t.stop()));
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#queued;
    this.#queued = [];
    if (batch.length === 0) return;
    const thread = this.#leastBusy();
    if (thread === undefined || !thread.send(batch)) checkOnPool(batch);
  }

  #leastBusy(): CheckThread | undefined {
    const idle = this.#threads.find((t) => t.inFlight === 0);
    if (idle !== undefined) return idle;
    if (this.#threads.length < this.#max) return this.#start();
    return this.#threads.reduce((a, b) => (b.inFlight < a.inFlight ? b : a), this.#threads[0]!);
  }

  #start(): CheckThread | undefined {
    try {
      const thread = new CheckThread(this.#idleMs, (gone, failed) => {
        const i = this.#threads.indexOf(gone);
        if (i >= 0) this.#threads.splice(i, 1);
        // A thread that died rather than idled out: the pool for a while, not a respawn loop.
        if (failed) this.#poolUntil = Date.now() + 5_000;
      });
      this.#threads.push(thread);
      return thread;
    } catch {
      this.#poolUntil = Date.now() + 5_000;
      return undefined;
    }
  }
}

/** One worker thread and the batches it has not answered yet. */
class CheckThread {
  readonly #worker: Worker;
  /** Batches sent, by sequence number, and how many of their checks are answered (answers come in order). */
  readonly #waiting = new Map<number, { checks: Check[]; answered: number }>();
  /** The ids of the keys this thread has been sent. */
  readonly #sentKeys = new Set<number>();
  #seq = 0;
  #inFlight = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Out of the set: idled out, stopped or died. Takes no new batch. */
  #retired = false;

  constructor(private readonly idleMs: number, private readonly onGone: (thread: CheckThread, failed: boolean) => void) {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true });
    this.#worker.unref();
    this.#worker.on('message', (m: { seq: number; from: number; out: Uint8Array }) => this.#answer(m.seq, m.from, m.out));
    this.#worker.on('error', () => this.#died());
    this.#worker.on('exit', () => this.#died());
    this.#armIdle();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Hands `batch` to the thread; false if it could not be posted (nothing of it is then held here). */
  send(batch: Check[]): boolean {
    const seq = this.#seq++;
    const keys: Array<[number, VerificationKey['key'], VerificationKey['digest']]> = [];
    let size = 0;
    for (const c of batch) {
      const id = keyId(c.key);
      if (!this.#sentKeys.has(id) && !keys.some(([k]) => k === id)) keys.push([id, c.key.key, c.key.digest]);
      size += c.data.length + c.signature.length;
    }
    const { bytes, spans } = pack(batch, size);
    try {
      this.#worker.postMessage({ seq, keys, bytes, spans }, [bytes]);
    } catch {
      return false; // e.g. a key that cannot be cloned: the caller checks this batch elsewhere
    }
    for (const [id] of keys) this.#sentKeys.add(id);
    this.#waiting.set(seq, { checks: batch, answered: 0 });
    if (this.#inFlight === 0) {
      clearTimeout(this.#idleTimer);
      this.#worker.ref(); // a check in flight keeps the process up until it is answered
    }
    this.#inFlight += batch.length;
    return true;
  }

  /** Ends the thread; what it still holds is checked on the pool. */
  async stop(): Promise<void> {
    this.#retire(false);
    await this.#worker.terminate();
  }

  #answer(seq: number, from: number, out: Uint8Array): void {
    const batch = this.#waiting.get(seq);
    if (batch === undefined) return;
    for (let i = 0; i < out.length; i += 1) batch.checks[from + i]!.answer(out[i] === 1);
    batch.answered = from + out.length;
    this.#inFlight -= out.length;
    if (batch.answered === batch.checks.length) this.#waiting.delete(seq);
    if (this.#inFlight === 0) {
      this.#worker.unref();
      this.#armIdle();
    }
  }

  #armIdle(): void {
    this.#idleTimer = setTimeout(() => void this.stop(), this.idleMs).unref();
  }

  #retire(failed: boolean): void {
    if (this.#retired) return;
    this.#retired = true;
    clearTimeout(this.#idleTimer);
    this.onGone(this, failed);
  }

  /** The worker is gone: if it was not asked to go, that is a failure; its unanswered checks go to the pool. */
  #died(): void {
    this.#retire(true);
    for (const batch of this.#waiting.values()) {
      checkOnPool(batch.checks.slice(batch.answered));
    }
    this.#waiting.clear();
    this.#inFlight = 0;
  }
}

function checkOnPool(checks: readonly Check[]): void {
  for (const c of checks) void libuvPoolChecker.check(c.key, c.data, c.signature).then(c.answer);
}

/** Every check's data and signature in one transferable buffer, and where each lies in it. */
function pack(batch: readonly Check[], size: number): { bytes: ArrayBuffer; spans: Uint32Array } {
  const bytes = new Uint8Array(size);
  const spans = new Uint32Array(batch.length * 5);
  let at = 0;
  batch.forEach((c, i) => {
    const s = i * 5;
    spans[s] = keyId(c.key);
    spans[s + 1] = at;
    spans[s + 2] = c.data.length;
    bytes.set(c.data, at);
    at += c.data.length;
    spans[s + 3] = at;
    spans[s + 4] = c.signature.length;
    bytes.set(c.signature, at);
    at += c.signature.length;
  });
  return { bytes: bytes.buffer, spans };
}

const keyIds = new WeakMap<VerificationKey, number>();
let nextKeyId = 1;

/** A number per key (VerificationKeys are made once per key: see signature.ts). */
function keyId(key: VerificationKey): number {
  let id = keyIds.get(key);
  if (id === undefined) keyIds.set(key, (id = nextKeyId++));
  return id;
}

let shared: SignatureThreads | undefined;

/** The process's signature threads, shared by every verifier (made on first use). */
export function sharedSignatureThreads(): SignatureThreads {
  shared ??= new SignatureThreads();
  return shared;
}
