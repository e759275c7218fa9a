import { EdgefedError } from './errors.js';

/** Parses "500ms", "5s", "10m", "2h", "30d" or a bare number of milliseconds. */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new EdgefedError('EDGEFED_ERR_DURATION', `"${text}" is not a duration; use e.g. 500ms, 5s, 10m, 2h, 30d`);
  const value = Number(m[1]) * UNITS[m[2] ?? 'ms']!;
  if (!Number.isFinite(value)) throw new EdgefedError('EDGEFED_ERR_DURATION', `"${text}" is out of range`);
  return Math.round(value);
}
