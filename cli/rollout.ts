/**
 * The deployment flags of `edgefed trigger` (`--rate`, `--ramp`,
 * `--abort-on`, `--start-at`, `--rollout-order`, `--continuous`) turned into
 * the request's fields, and those fields turned back into words for
 * `wpk show` and `trigger --wait`.
 */
import type { ApiWpk } from '../lib/api.js';
import { parseDuration } from '../lib/duration.js';
import { isValidId } from '../lib/ids.js';
import type { HttpAbortCriterion, HttpRollout, HttpWpkRequest } from '../lib/wire.js';
import { CliError, str, type Flags, type FlagSpecs } from './args.js';

export const ROLLOUT_FLAGS: FlagSpecs = {
  continuous: { type: 'boolean', help: 'Mode all: stay open until the deadline; nodes that match later (join, come back, gain the capability or label) run it too' },
  rate: { type: 'string', value: 'N/min', help: 'Mode all: dispatch at most N a minute, evenly spread (also N/s); with --ramp: the ramp\'s cap' },
  ramp: { type: 'string', value: 'N/min,xF,every K', help: 'Mode all: start at N a minute, times F each time K more succeed, e.g. "10/min,x2,every 20"' },
  'rollout-order': { type: 'string', value: 'LABEL', help: 'Mode all, with --rate or --ramp: targets in order of this label\'s value (nodes without it last), then node id (default: node id)' },
  'abort-on': { type: 'string', multiple: true, value: 'ON:P%:N', help: 'Mode all: abort once N executions ended and P % of them ended ON (failed, rejected, timed_out or any), e.g. failed:10%:20 (repeatable)' },
  'start-at': { type: 'string', value: 'WHEN', help: 'Dispatch nothing before then: a duration from now (10m) or a time (2026-12-05T22:00:00Z)' },
};

const HINT = 'Run "edgefed trigger --help".';

function usageError(message: string): CliError {
  return new CliError(`edgefed trigger: ${message}. ${HINT}`);
}

/** "60/min" or "2/s" as dispatches per minute. */
export function parsePerMinute(text: string, flag: string): number {
  const m = /^\s*(\d+)\s*\/\s*(min|m|s|sec)\s*$/.exec(text);
  if (!m) throw usageError(`--${flag}: "${text}" is not a rate; use e.g. 60/min or 2/s`);
  const perMinute = Number(m[1]) * (m[2]!.startsWith('s') ? 60 : 1);
  if (perMinute < 1 || perMinute > 60_000) throw usageError(`--${flag}: ${text} is ${perMinute} a minute; it must be 1 to 60000 a minute`);
  return perMinute;
}

/** "10/min,x2,every 20": a base rate, a factor, and the successes between steps. */
export function parseRamp(text: string): Required<Pick<HttpRollout, 'base_per_minute' | 'factor' | 'every_succeeded'>> {
  const [rate, factor, every, ...rest] = text.split(',').map((p) => p.trim());
  const f = /^[x*](\d+(?:\.\d+)?)$/i.exec(factor ?? '');
  const k = /^every\s*(\d+)$/i.exec(every ?? '');
  if (rate === undefined || !f || !k || rest.length > 0) throw usageError(`--ramp: "${text}" is not a ramp; use RATE,xFACTOR,every N, e.g. "10/min,x2,every 20"`);
  const factorValue = Number(f[1]);
  if (factorValue <= 1) throw usageError(`--ramp: the factor must be above 1, got ${f[1]}`);
  return { base_per_minute: parsePerMinute(rate, 'ramp'), factor: factorValue, every_succeeded: Math.max(1, Number(k[1])) };
}

/** "failed:10%:20": abort once 20 ended and 10 % of them failed. */
export function parseAbort(text: string): HttpAbortCriterion {
  const m = /^\s*(failed|rejected|timed_out|any)\s*:\s*(\d+(?:\.\d+)?)\s*%\s*:\s*(\d+)\s*$/.exec(text);
  if (!m) throw usageError(`--abort-on: "${text}" is not a criterion; use ON:PERCENT%:MIN_EXECUTED with ON one of failed, rejected, timed_out, any (e.g. failed:10%:20)`);
  const pct = Number(m[2]);
  if (pct <= 0 || pct > 100) throw usageError(`--abort-on: the percentage must be above 0 and at most 100, got ${m[2]}`);
  return { on: m[1] as HttpAbortCriterion['on'], threshold_pct: pct, min_executed: Math.max(1, Number(m[3])) };
}

/** A duration from `now` or an ISO time, as epoch ms. */
export function parseStartAt(text: string, now: number): number {
  if (/^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$/.test(text)) return now + parseDuration(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw usageError(`--start-at: "${text}" is neither a duration (10m) nor a time (2026-12-05T22:00:00Z)`);
  return at;
}

/** Adds the deployment fields the flags ask for to the request. */
export function addRolloutFields(request: HttpWpkRequest, flags: Flags, now: number): void {
  if (flags.continuous === true) request.continuous = true;
  const rate = str(flags, 'rate');
  const ramp = str(flags, 'ramp');
  const order = str(flags, 'rollout-order');
  if (rate !== undefined || ramp !== undefined) {
    request.rollout = {
      ...(ramp !== undefined ? parseRamp(ramp) : {}),
      ...(rate !== undefined ? { max_per_minute: parsePerMinute(rate, 'rate') } : {}),
    };
    if (order !== undefined) {
      if (!isValidId(order)) throw usageError(`--rollout-order: "${order}" is not a valid label name`);
      request.rollout.order_label = order;
    }
  } else if (order !== undefined) {
    throw usageError('--rollout-order orders a rollout: give --rate or --ramp too');
  }
  const abort = flags['abort-on'];
  if (Array.isArray(abort) && abort.length > 0) request.abort = abort.map(parseAbort);
  const startAt = str(flags, 'start-at');
  if (startAt !== undefined) request.start_at = parseStartAt(startAt, now);
}

// ---- words for a record --------------------------------------------------

/** A rollout's rate now, to a tenth: "37.5/min". */
export function rateText(w: ApiWpk): string {
  return `${Math.round((w.rollout_rate_per_minute ?? 0) * 10) / 10}/min`;
}

export function rolloutText(w: ApiWpk): string {
  const r = w.rollout;
  if (!r) return 'all at once';
  const pace = r.base_per_minute === undefined
    ? `${r.max_per_minute}/min`
    : `ramp from ${r.base_per_minute}/min, x${r.factor} every ${r.every_succeeded} succeeded${r.max_per_minute === undefined ? '' : `, at most ${r.max_per_minute}/min`}`;
  const now = w.rollout_rate_per_minute !== null && r.base_per_minute !== undefined ? ` (now ${rateText(w)})` : '';
  return `${pace}${now}, in order of ${r.order_label === undefined ? 'node id' : `label ${r.order_label}, then node id`}`;
}

export function abortText(w: ApiWpk): string {
  if (w.abort.length === 0) return '-';
  return w.abort.map((c) => `${c.on} >= ${c.threshold_pct}% after ${c.min_executed}`).join('; ');
}
