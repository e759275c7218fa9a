/**
 * A benchmark's client fleet in a child process, driven over IPC: commands
 * go down, typed reports come back. The fleet runs apart so that its CPU is
 * not the measured process's. Every wait is bounded and fails early, with the
 * child's last stderr, if the child dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Report { type: string }
export type StopCommand = { cmd: 'stop' };

export class ChildFleet<R extends Report, C extends { cmd: string }> {
  #stderr = '';
  #waiters: Array<{ type: R['type']; resolve: (m: R) => void }> = [];
  readonly #exited: Promise<void>;

  protected constructor(readonly child: ChildProcess, private readonly name: string, private readonly stopGraceMs: number) {
    child.stderr?.on('data', (d: Buffer) => { this.#stderr = (this.#stderr + d.toString()).slice(-4000); });
    child.on('message', (m: R) => {
      const i = this.#waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(m);
    });
    this.#exited = new Promise((r) => child.once('exit', () => r()));
  }

  /** Starts `script` (run with tsx) and waits for its `ready` report. */
  protected static async start<F extends { next(type: 'ready', timeoutMs: number): Promise<unknown> }>(
    make: (child: ChildProcess) => F, script: string, args: string[], readyTimeoutMs: number,
  ): Promise<F> {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const fleet = make(child);
    try {
      await fleet.next('ready', readyTimeoutMs);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    return fleet;
  }

  /** The next report of this type, bounded; fails early if the child dies. */
  next<T extends R['type']>(type: T, timeoutMs = 30_000): Promise<Extract<R, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms; stderr: ${this.#stderr}`)), timeoutMs);
      this.#waiters.push({ type, resolve: (m) => { clearTimeout(timer); resolve(m as Extract<R, { type: T }>); } });
      void this.#exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (code ${this.child.exitCode}) before "${type}"; stderr: ${this.#stderr}`));
      });
    });
  }

  send(cmd: C): void {
    this.child.send(cmd);
  }

  /** Sends `cmd` and waits for its reply report. */
  ask<T extends R['type']>(cmd: C, type: T, timeoutMs = 30_000): Promise<Extract<R, { type: T }>> {
    const reply = this.next(type, timeoutMs);
    this.send(cmd);
    return reply;
  }

  /** Asks the fleet to stop (bounded), then makes sure the process is gone. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.send({ cmd: 'stop' } satisfies StopCommand);
    const killer = setTimeout(() => this.child.kill('SIGKILL'), this.stopGraceMs);
    await this.#exited;
    clearTimeout(killer);
  }
}
