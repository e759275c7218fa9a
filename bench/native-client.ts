/**
 * The auth-storm fleet's `native` clients: bench/native/connect-storm.c,
 * compiled once per source version into the temp dir with the machine's C
 * compiler (`cc`), driven over its stdin/stdout. The packets are the same as
 * the `raw` clients' (the tests' MQTT frame helpers); the C loop only moves
 * them, so the fleet takes far less of the cores the broker shares.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./native/connect-storm.c', import.meta.url));

export interface NativeStorm { firstConnectAt: number; lastConnackAt: number; connected: number; failed: number; cpuMs: number }
export interface NativePublished { firstAt: number; lastAt: number; sent: number }

/** The compiled load generator (made on first use; a clear error without a C compiler). */
function binary(): string {
  const source = fs.readFileSync(SOURCE);
  const file = path.join(os.tmpdir(), `edgefed-connect-storm-${createHash('sha256').update(source).digest('hex').slice(0, 12)}`);
  if (fs.existsSync(file)) return file;
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', `${file}.tmp`, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`--client native needs a C compiler (cc) to build ${SOURCE}: ${(err as Error).message}; use --client raw`);
  }
  fs.renameSync(`${file}.tmp`, file);
  return file;
}

/** Writes `frames` as the C side reads them: u32 count, then u32 length + bytes each (little endian). */
function framesFile(dir: string, name: string, frames: readonly Buffer[]): string {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(frames.length);
  const parts: Buffer[] = [head];
  for (const f of frames) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(f.length);
    parts.push(len, f);
  }
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat(parts));
  return file;
}

export class NativeClients {
  readonly #proc: ChildProcessWithoutNullStreams;
  readonly #answers: Array<(line: string) => void> = [];
  readonly #dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgefed-native-fleet-'));

  constructor() {
    this.#proc = spawn(binary(), [], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.#proc.stdout }).on('line', (line) => this.#answers.shift()?.(line));
  }

  storm(host: string, port: number, connects: readonly Buffer[], concurrency: number, timeoutMs: number): Promise<NativeStorm> {
    const file = framesFile(this.#dir, 'connect.bin', connects);
    return this.#ask(`storm ${host} ${port} ${file} ${concurrency} ${timeoutMs}`);
  }

  publish(publishes: readonly Buffer[]): Promise<NativePublished> {
    return this.#ask(`publish ${framesFile(this.#dir, 'publish.bin', publishes)}`);
  }

  close(): Promise<{ closed: number }> {
    return this.#ask('close');
  }

  stop(): void {
    this.#proc.stdin.end();
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }

  #ask<T>(command: string): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#answers.push((line) => {
        const answer = JSON.parse(line) as T & { error?: string };
        if (answer.error !== undefined) reject(new Error(`native clients: ${answer.error}`));
        else resolve(answer);
      });
      this.#proc.stdin.write(`${command}\n`);
    });
  }
}
