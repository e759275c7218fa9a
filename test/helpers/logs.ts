/** Logs captured as parsed JSON lines, for assertions on what was logged (and how often). */
import { jsonLogger, type Logger } from '../../lib/log.js';

/** One parsed JSON log line (pino shape: level, time, msg, fields). */
export type LogLine = Record<string, unknown> & { level: number; msg?: string };

/** A debug-level logger that parses every line into `lines`, for assertions on what was logged. */
export function capturingLogger(lines: LogLine[]): Logger {
  return jsonLogger('debug', {}, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
}

/** Lines of the connection gate: the first refusal of a window and the summaries. */
export function refusalLines(lines: readonly LogLine[]): LogLine[] {
  return lines.filter((l) => typeof l.msg === 'string' && /connections? refused at accept/.test(l.msg));
}

/** Lines with exactly this message. */
export function linesWith(lines: readonly LogLine[], msg: string): LogLine[] {
  return lines.filter((l) => l.msg === msg);
}
