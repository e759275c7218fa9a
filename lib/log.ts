/**
 * The logging surface the library needs. pino's Logger satisfies it (the hub
 * uses pino); the agent ships a tiny JSON-lines logger of the same shape so
 * that constrained devices do not load pino.
 */
import { EdgefedError } from './errors.js';

export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVELS: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50, silent: 100 };

/** A pino-compatible JSON-lines logger writing to a stream (stderr by default). */
export function jsonLogger(
  level: LogLevel = 'info',
  bindings: Record<string, unknown> = {},
  out: { write(line: string): unknown } = process.stderr,
): Logger {
  const threshold = LEVELS[level];
  const make = (lvl: Exclude<LogLevel, 'silent'>): LogFn =>
    ((a: object | string, b?: string) => {
      if (LEVELS[lvl] < threshold) return;
      const fields = typeof a === 'string' ? { msg: a } : { ...a, msg: b };
      out.write(`${JSON.stringify({ level: LEVELS[lvl], time: Date.now(), ...bindings, ...fields })}\n`);
    }) as LogFn;
  return {
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
    child: (more) => jsonLogger(level, { ...bindings, ...more }, out),
  };
}

export const silentLogger: Logger = jsonLogger('silent');

/**
 * The log fields of a caught error. An EdgefedError was expected and says what
 * to do: its code and message. Anything else is unexpected: its stack too,
 * so the line points at the code that failed.
 */
export function errorFields(err: unknown): { err: string; code?: string; stack?: string } {
  if (err instanceof EdgefedError) return { err: err.message, code: err.code };
  if (!(err instanceof Error)) return { err: String(err) };
  const code = (err as NodeJS.ErrnoException).code;
  return { err: err.message, ...(typeof code === 'string' ? { code } : {}), ...(err.stack ? { stack: err.stack } : {}) };
}
