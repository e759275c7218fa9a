/**
 * Inbound messages (commands, hub status), parsed by hand: the agent does not
 * load the JSON Schemas, and a malformed message must never crash a node, so
 * every check returns a reason instead of throwing.
 */
import { isValidId } from '../lib/ids.js';
import { parseObject } from '../lib/json.js';
import { MAX_PAYLOAD_BYTES } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import type { Command, HubStatus } from '../lib/wire.js';

/** Commands are tiny; refusing big payloads before JSON.parse bounds the cost of a hostile one. */
export const MAX_INBOUND_BYTES = MAX_PAYLOAD_BYTES;

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export type CommandName = Command['command'];
export type CommandOf<K extends CommandName> = Extract<Command, { command: K }>;
export type CommandHandler<K extends CommandName = CommandName> = (command: CommandOf<K>) => void | Promise<void>;

export function parseJsonObject(payload: Buffer): Parsed<Record<string, unknown>> {
  if (payload.length > MAX_INBOUND_BYTES) return { ok: false, reason: `payload of ${payload.length} bytes exceeds ${MAX_INBOUND_BYTES}` };
  const parsed = parseObject(payload);
  return parsed.ok ? parsed : { ok: false, reason: parsed.reason };
}

const isEpochMs = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * Accepts the contract's command shapes. `ts` is optional here (an operator's
 * `mosquitto_pub -m '{"command":"rebirth"}'` should work); when absent the
 * receive time stands in.
 */
export function parseCommand(payload: Buffer, now: number = Date.now()): Parsed<Command> {
  const obj = parseJsonObject(payload);
  if (!obj.ok) return obj;
  const { command, ts } = obj.value;
  if (ts !== undefined && !isEpochMs(ts)) return { ok: false, reason: 'ts must be epoch milliseconds' };
  const when = ts ?? now;
  switch (command) {
    case 'rebirth':
      return { ok: true, value: { command, ts: when } };
    case 'cancel': {
      const { wpk_id: wpkId, attempt } = obj.value;
      if (!isValidId(wpkId)) return { ok: false, reason: 'cancel needs a valid wpk_id' };
      if (!Number.isInteger(attempt) || (attempt as number) < 1) return { ok: false, reason: 'cancel needs an integer attempt >= 1' };
      return { ok: true, value: { command, wpk_id: wpkId, attempt: attempt as number, ts: when } };
    }
    default:
      return { ok: false, reason: typeof command === 'string' ? `unknown command "${command.slice(0, 64)}"` : 'missing "command"' };
  }
}

export function parseHubStatus(payload: Buffer): Parsed<HubStatus> {
  const obj = parseJsonObject(payload);
  if (!obj.ok) return obj;
  const { state, boot_id: bootId, ts } = obj.value;
  if (state !== 'online' && state !== 'offline') return { ok: false, reason: 'state must be online or offline' };
  if (typeof bootId !== 'string' || bootId.length === 0) return { ok: false, reason: 'missing boot_id' };
  return { ok: true, value: { state, boot_id: bootId, ts: isEpochMs(ts) ? ts : 0 } };
}

/**
 * Routes commands to handlers by name. The agent registers `rebirth`, and
 * `cancel` for its work-package executor, without touching the connection
 * code. A command nobody handles is logged, not fatal.
 */
export class CommandDispatcher {
  private readonly handlers = new Map<CommandName, (command: Command) => void | Promise<void>>();

  constructor(private readonly log: Logger) {}

  on<K extends CommandName>(name: K, handler: CommandHandler<K>): void {
    // Safe narrowing: dispatch looks handlers up by the parsed command's own name.
    this.handlers.set(name, (command) => handler(command as CommandOf<K>));
  }

  off(name: CommandName): void {
    this.handlers.delete(name);
  }

  /** Parses and runs one message from the commands topic; never throws. */
  dispatch(payload: Buffer): void {
    const parsed = parseCommand(payload);
    if (!parsed.ok) {
      this.log.warn({ reason: parsed.reason }, 'ignoring malformed command');
      return;
    }
    const command = parsed.value;
    const handler = this.handlers.get(command.command);
    if (!handler) {
      this.log.warn({ command: command.command }, 'ignoring command this agent does not handle yet');
      return;
    }
    this.log.debug({ command: command.command }, 'command received');
    try {
      Promise.resolve(handler(command)).catch((err: unknown) => this.failed(command.command, err));
    } catch (err) {
      this.failed(command.command, err);
    }
  }

  private failed(name: CommandName, err: unknown): void {
    this.log.error({ command: name, err: err instanceof Error ? err.message : String(err) }, 'command handler failed');
  }
}
