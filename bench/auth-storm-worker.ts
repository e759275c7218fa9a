/**
 * Bench-only prototype for auth-storm's `node-worker` verifier: signature
 * checks batched to one worker thread instead of one libuv pool job each.
 * Requests made in one turn of the event loop go in one message (flushed by
 * setImmediate); the worker checks them with the synchronous crypto.verify
 * and answers the whole batch in one message. One thread in all, and one
 * wake-up of the main thread per batch rather than per token.
 *
 * Not product code: no fallback if the worker dies, one thread whatever the
 * core count, and the caller must close() it (a worker with a message
 * listener keeps the process alive even when unref'd).
 */
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Plain JS, evaluated in the worker: no loader, so the same under tsx and from dist/. */
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
let key; let digest = null;
parentPort.on('message', (m) => {
  if (m.key) { key = m.key; digest = m.digest; return; }
  const out = new Uint8Array(m.data.length);
  for (let i = 0; i < m.data.length; i += 1) {
    try { out[i] = crypto.verify(digest, m.data[i], key, m.sigs[i]) ? 1 : 0; } catch { out[i] = 0; }
  }
  parentPort.postMessage({ seq: m.seq, out });
});`;

interface Batch { data: Uint8Array[]; sigs: Uint8Array[]; answers: Array<(ok: boolean) => void> }

export class WorkerSignatures {
  private readonly worker = new Worker(WORKER_CODE, { eval: true });
  private readonly waiting = new Map<number, Batch['answers']>();
  private batch: Batch | undefined;
  private seq = 0;

  /** One key for every check (the bench's key sets hold one). */
  constructor(key: KeyObject, digest: 'sha256' | null) {
    this.worker.postMessage({ key, digest });
    this.worker.on('message', (m: { seq: number; out: Uint8Array }) => {
      const answers = this.waiting.get(m.seq) ?? [];
      this.waiting.delete(m.seq);
      answers.forEach((answer, i) => answer(m.out[i] === 1));
    });
  }

  verify(data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (this.batch === undefined) {
      this.batch = { data: [], sigs: [], answers: [] };
      setImmediate(() => this.flush());
    }
    const batch = this.batch;
    batch.data.push(data);
    batch.sigs.push(signature);
    return new Promise((resolve) => batch.answers.push(resolve));
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }

  private flush(): void {
    const batch = this.batch!;
    this.batch = undefined;
    const seq = this.seq++;
    this.waiting.set(seq, batch.answers);
    this.worker.postMessage({ seq, data: batch.data, sigs: batch.sigs });
  }
}
