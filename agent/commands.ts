/**
 * Inbound messages (commands, hub status), checked by the validators
 * generated from the JSON Schemas (agent/generated/; the agent
 * does not load ajv). A malformed message must never crash a node, so every
 * check returns a reason instead of throwing.
 */
import { parseObject } from '../lib/json.js';
import { MAX_PAYLOAD_BYTES } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import { describe } from '../lib/schema-errors.js';
import type { Command, HubStatus } from '../lib/wire.js';
import { checkCancelCommand, checkRebirthCommand } from './generated/commands.js';
import { checkHubStatus } from './generated/hub-status.js';
import type { GeneratedCheck } from './generated/runtime.js';

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

/** Size, JSON, object, then the schema; the reason names the first problem (`attempt: must be >= 1`). */
export function checkPayload<T>(payload: Buffer, check: GeneratedCheck<T>): Parsed<T> {
  const obj = parseJsonObject(payload);
  return obj.ok ? checkValue(obj.value, check) : obj;
}

function checkValue<T>(value: unknown, check: GeneratedCheck<T>): Parsed<T> {
  if (check(value)) return { ok: true, value };
  return { ok: false, reason: describe(check.errors, 1).join('') };
}

/**
 * Accepts the contract's command shapes. `ts` is optional here (an operator's
 * `mosquitto_pub -m '{"command":"rebirth"}'` should work); when absent the
 * receive time stands in.
 */
export function parseCommand(payload: Buffer, now: number = Date.now()): Parsed<Command> {
  const obj = parseJsonObject(payload);
  if (!obj.ok) return obj;
  const { command } = obj.value;
  if (command === 'cancel' || command === 'rebirth') {
    const parsed = command === 'cancel' ? checkValue(obj.value, checkCancelCommand) : checkValue(obj.value, checkRebirthCommand);
    if (!parsed.ok) return { ok: false, reason: `${command}: ${parsed.reason}` };
    return { ok: true, value: { ...parsed.value, ts: parsed.value.ts ?? now } as Command };
  }
  return { ok: false, reason: typeof command === 'string' ? `unknown command "${command.slice(0, 64)}"` : 'missing "command"' };
}

export function parseHubStatus(payload: Buffer): Parsed<HubStatus> {
  return checkPayload(payload, checkHubStatus);
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
