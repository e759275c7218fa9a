/**
 * Desired state on the node (issue 16): the hub keeps the node's desired
 * state retained on `nodes/{id}/desired`, so a node that was offline finds
 * the latest version on its next connect (never the ones in between). The
 * keeper runs the user's handler for each new version, one at a time, and
 * reports the result retained on `nodes/{id}/reported` with that version.
 * Without a handler the desired state is taken as is and written to
 * `desired-state.json` in the spool directory, where a program on the device
 * can read its configuration. A handler that throws is reported with its
 * error and tried again only on the next version or the next connect: never
 * in a loop.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stateDelta, type StateObject } from '../lib/desired-state.js';
import { MAX_ERROR_LENGTH } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import type { DesiredState, ReportedState } from '../lib/wire.js';
import { checkPayload } from './commands.js';
import { checkDesiredState } from './generated/desired-state.js';

/** What a desired-state handler is told besides the state and its delta. */
export interface DesiredContext {
  nodeId: string;
  /** The desired version being applied. */
  version: number;
  /** What the node reported last (the state it runs now), null before its first report. */
  reported: StateObject | null;
}

/**
 * Applies a desired state on the device; returns the state now in effect
 * (reported to the hub), or nothing to report the desired state as applied.
 * `delta` holds the desired keys that differ from the last reported state.
 * It may run again for the same version (after a restart without a spool
 * directory, or a retry after an error): make it idempotent.
 */
export type DesiredHandler = (state: StateObject, delta: StateObject, ctx: DesiredContext) => StateObject | void | Promise<StateObject | void>;

/** Written in the spool directory without a handler: `{version, state, ts}` of the desired state in effect. */
export const DESIRED_STATE_FILE = 'desired-state.json';
/** What the node last reported, kept so a restarted agent does not apply the same version again. */
export const REPORTED_STATE_FILE = 'reported-state.json';

export interface DesiredKeeperOptions {
  nodeId: string;
  log: Logger;
  /** The spool directory, if any. */
  dir: string | undefined;
  handler: DesiredHandler | undefined;
  /** Publishes the retained report (QoS 1); the agent knows the topic and the client. */
  report: (report: ReportedState) => void;
}

export class DesiredKeeper {
  #handler: DesiredHandler | undefined;
  /** The newest desired state received. */
  #latest: DesiredState | undefined;
  /** What was last reported (or is to be): the applied version, its state, and an error. */
  #applied: ReportedState | undefined;
  #running = false;
  /** A failed version may be tried again once per connection. */
  #retryAllowed = true;
  /** Reported in this connection already (a broker that lost its store gets it once per connect). */
  #reportedThisSession = false;

  constructor(private readonly o: DesiredKeeperOptions) {
    this.#handler = o.handler;
    this.#applied = this.#readApplied();
  }

  /** Replaces the handler; the next version (or retry) uses it. */
  setHandler(handler: DesiredHandler): void {
    this.#handler = handler;
  }

  /** A new connection: a failed version may be tried once more, and the report is sent again. */
  onConnect(): void {
    this.#retryAllowed = true;
    this.#reportedThisSession = false;
  }

  /** A message on this node's desired topic. */
  onMessage(payload: Buffer): void {
    if (payload.length === 0) return; // cleared: the node was removed from the federation
    const parsed = checkPayload(payload, checkDesiredState);
    if (!parsed.ok) return void this.o.log.warn({ reason: parsed.reason }, 'ignoring a malformed desired state');
    const d = parsed.value;
    if (this.#latest && d.version < this.#latest.version && d.ts <= this.#latest.ts) return; // an older copy
    this.#latest = d;
    void this.#drain();
  }

  /** Applies the newest version until nothing newer is waiting; one handler call at a time. */
  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (;;) {
        const d = this.#latest;
        const a = this.#applied;
        if (!d) return;
        if (a && a.version === d.version) {
          if (a.error === undefined || !this.#retryAllowed) {
            if (!this.#reportedThisSession) this.#send(a);
            return;
          }
        }
        await this.#apply(d, a);
      }
    } finally {
      this.#running = false;
    }
  }

  async #apply(d: DesiredState, before: ReportedState | undefined): Promise<void> {
    // One attempt per connection: a failure now is retried on the next connect (or version), not at once.
    this.#retryAllowed = false;
    const reportedBefore = before?.state ?? null;
    const ctx: DesiredContext = { nodeId: this.o.nodeId, version: d.version, reported: reportedBefore };
    let next: ReportedState;
    try {
      const result = this.#handler
        ? await this.#handler(structuredClone(d.state), stateDelta(d.state, reportedBefore), ctx)
        : this.#keepInFile(d);
      next = { version: d.version, state: isObject(result) ? result : d.state, ts: Date.now() };
      this.o.log.info({ version: d.version }, 'desired state applied');
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_LENGTH) || 'handler failed';
      // The state still in effect is the last one applied; retried on the next version or connect.
      next = { version: d.version, state: reportedBefore ?? {}, ts: Date.now(), error: message };
      this.o.log.warn({ version: d.version, err: message }, 'desired state handler failed; it will be retried on the next version or reconnect');
    }
    this.#applied = next;
    this.#writeApplied(next);
    this.#send(next);
  }

  #send(report: ReportedState): void {
    this.#reportedThisSession = true;
    this.o.report(report);
  }

  /** The default handler: the configuration goes to a file a program on the device reads. */
  #keepInFile(d: DesiredState): StateObject {
    if (this.o.dir) writeJsonAtomically(path.join(this.o.dir, DESIRED_STATE_FILE), d);
    return d.state;
  }

  #readApplied(): ReportedState | undefined {
    if (!this.o.dir) return undefined;
    try {
      const value = JSON.parse(readFileSync(path.join(this.o.dir, REPORTED_STATE_FILE), 'utf8')) as ReportedState;
      return typeof value.version === 'number' && isObject(value.state) ? value : undefined;
    } catch {
      return undefined; // none yet, or unreadable: the next desired version is applied afresh
    }
  }

  #writeApplied(report: ReportedState): void {
    if (!this.o.dir) return;
    try {
      writeJsonAtomically(path.join(this.o.dir, REPORTED_STATE_FILE), report);
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'could not keep the reported state in the spool directory');
    }
  }
}

function isObject(value: unknown): value is StateObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A temp file and a rename: a reader never sees half a file. */
function writeJsonAtomically(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp`;
  writeFileSync(temp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(temp, file);
}
