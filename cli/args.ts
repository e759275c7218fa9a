/**
 * Flag parsing shared by every command: node's parseArgs, then `EDGEFED_*`
 * environment variables for flags not given (flags win), then defaults.
 * Errors are CliError with exit code 2 and a pointer to --help.
 */
import { parseArgs } from 'node:util';
import type { LogLevel } from '../lib/log.js';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/** `--log-level`, shared by every long-running command. */
export function logLevel(flags: Flags, command: string): LogLevel {
  const value = str(flags, 'log-level') ?? 'info';
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new CliError(`edgefed ${command}: --log-level must be one of ${LOG_LEVELS.join(', ')}, got "${value}". Run "edgefed ${command} --help".`);
}

export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in --help. */
  help: string;
  /** Placeholder in --help, e.g. PORT. */
  value?: string;
  default?: string | boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;
export type Flags = Record<string, string | boolean | string[] | undefined>;

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 2) { super(message); }
}

/** `--heartbeat-interval` is read from `EDGEFED_HEARTBEAT_INTERVAL`. */
export function envName(flag: string): string {
  return `EDGEFED_${flag.toUpperCase().replace(/-/g, '_')}`;
}

export function parseFlags(command: string, argv: string[], specs: FlagSpecs, env: NodeJS.ProcessEnv): { flags: Flags; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, s] of Object.entries(specs)) {
    options[name] = { type: s.type, ...(s.short ? { short: s.short } : {}), ...(s.multiple ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(`edgefed ${command}: ${parseArgsProblem(err as NodeJS.ErrnoException, Object.keys(options))}; see edgefed ${command} --help`);
  }
  const flags = { ...parsed.values } as Flags;
  for (const [name, s] of Object.entries(specs)) {
    if (flags[name] !== undefined) continue;
    const fromEnv = env[envName(name)];
    if (fromEnv !== undefined && fromEnv !== '') {
      if (s.type === 'boolean') flags[name] = /^(1|true|yes|on)$/i.test(fromEnv);
      else flags[name] = s.multiple ? fromEnv.split(',').map((v) => v.trim()).filter(Boolean) : fromEnv;
    } else if (s.default !== undefined) {
      flags[name] = s.default;
    }
  }
  return { flags, positionals: parsed.positionals };
}

/**
 * node's parseArgs errors in our one-line shape: "unknown option --idd (did
 * you mean --id?)", "--broker needs a value", never its advice about `--`.
 */
export function parseArgsProblem(err: NodeJS.ErrnoException, known: string[]): string {
  const option = /'(-{1,2}[^'\s]+)/.exec(err.message)?.[1] ?? '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const name = option.replace(/^-+/, '').split('=')[0]!;
      const near = closest(name, known);
      return `unknown option ${option || err.message}${near ? ` (did you mean --${near}?)` : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(err.message) ? `${option.split(' ')[0]} needs a value` : `${option.split(' ')[0]} takes no value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${option || err.message}`;
    default:
      return err.message;
  }
}

/** The known option within edit distance 2 of `name`, if one is. */
function closest(name: string, known: string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d <= 2 && (!best || d < best.d)) best = { name: k, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const cur = [i];
    for (let j = 1; j <= b.length; j += 1) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

export function helpText(usage: string, summary: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `  --${name}${s.type === 'string' ? ` ${s.value ?? 'VALUE'}` : ''}`;
    const def = s.default !== undefined && s.default !== false ? ` (default ${String(s.default)})` : '';
    return `${left.padEnd(30)} ${s.help}${def}  [${envName(name)}]`;
  });
  return `Usage: ${usage}\n\n${summary}\n\nOptions:\n${rows.join('\n')}\n  --help, -h                     Show this help\n`;
}

export function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function list(flags: Flags, name: string): string[] {
  const v = flags[name];
  if (Array.isArray(v)) return v.flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
  return typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : [];
}

export function int(flags: Flags, name: string, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`--${name} must be a whole number from ${min} to ${max}, got "${v}"`);
  return n;
}

/** `--label site=berlin --label rack=3` (or `site=berlin,rack=3` from the environment). */
export function labels(flags: Flags, name = 'label'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of list(flags, name)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`--${name} takes name=value, got "${pair}"`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export interface CommandHelp { usage: string; summary: string }

/**
 * A (sub)command's flags and positionals, or undefined once `--help` has
 * printed its help. Positionals beyond `maxPositionals` are a usage error
 * naming the first extra one.
 */
export function commandFlags(
  command: string, argv: string[], specs: FlagSpecs, env: NodeJS.ProcessEnv, help: CommandHelp, maxPositionals = 0,
): { flags: Flags; positionals: string[] } | undefined {
  const parsed = parseFlags(command, argv, specs, env);
  if (parsed.flags.help) {
    process.stdout.write(helpText(help.usage, help.summary, specs));
    return undefined;
  }
  const extra = parsed.positionals[maxPositionals];
  if (extra !== undefined) throw new CliError(`edgefed ${command}: unexpected argument "${extra}". Run "edgefed ${command} --help".`);
  return parsed;
}
