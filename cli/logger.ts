/**
 * The logs of the long-running commands (`start`, `agent`, `simulate`): JSON
 * lines for machines (journald, a log shipper, a pipe), one readable line per
 * event for a person at a terminal. `--log-format json|pretty` chooses; by
 * default a terminal gets pretty and anything else JSON. The pretty lines are
 * pino-pretty's (a maintained formatter), written synchronously so that the
 * last lines before an exit are not lost.
 */
import type { Logger, LogLevel } from '../lib/log.js';
import { CliError, str, type Flags, type FlagSpec } from './args.js';

export type LogFormat = 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

export const LOG_FORMAT_FLAG: FlagSpec = {
  type: 'string', value: 'FORMAT', help: 'json (one JSON object per line) or pretty (one readable line per event, coloured on a terminal); default: pretty on a terminal, else json',
};

/** Which stream a command logs to: `start` to stdout (its ready line is read there), the others to stderr. */
export type LogStream = 1 | 2;

export function logFormat(flags: Flags, command: string, fd: LogStream): LogFormat {
  const value = str(flags, 'log-format');
  if (value === undefined) return isTty(fd) ? 'pretty' : 'json';
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new CliError(`edgefed ${command}: --log-format must be json or pretty, got "${value}". Run "edgefed ${command} --help".`);
}

function isTty(fd: LogStream): boolean {
  return (fd === 1 ? process.stdout : process.stderr).isTTY === true;
}

/**
 * A pino logger in the chosen format. pino and pino-pretty are loaded here
 * only: the agent library keeps its own tiny JSON logger for devices.
 */
export async function cliLogger(o: { format: LogFormat; level: LogLevel; fd: LogStream; base: Record<string, unknown> }): Promise<Logger> {
  const { pino } = await import('pino');
  const options = { level: o.level, base: o.base };
  // Typed as our Logger: pino's own type has an index signature that makes it look thenable to an async function.
  let log: Logger;
  if (o.format === 'json') {
    log = pino(options, pino.destination(o.fd));
    return log;
  }
  const { default: pretty } = await import('pino-pretty');
  // pino tells pino-pretty its errorKey (`err`), which it would print on lines of its own; ours are
  // messages (lib/log.ts errorFields), so the pretty logger names another key and `err` stays on the line.
  const prettyOptions = { ...options, errorKey: 'error_object' };
  const colorize = isTty(o.fd) && process.env['NO_COLOR'] === undefined;
  log = pino(prettyOptions, pretty({
    destination: o.fd,
    sync: true,
    colorize,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    // "12:04:05.123 INFO  hub: node registered {node_id: ...}": the component leads the message.
    messageFormat: '{if component}{component}: {end}{msg}',
    ignore: 'pid,hostname,app,name,component',
    errorLikeObjectKeys: ['error_object'],
  }));
  return log;
}
