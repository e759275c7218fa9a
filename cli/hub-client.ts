/** A small client of the hub's HTTP API for CLI commands (`--hub URL`). */
import { CliError } from './args.js';

export const DEFAULT_HUB_URL = 'http://127.0.0.1:8080';

interface ErrorBody { error?: { message?: string; details?: string[] } }

export function getJson<T>(hub: string, path: string): Promise<T> {
  return requestJson<T>(hub, path, {});
}

/** POSTs `body` as JSON (no body at all when undefined) and reads the JSON answer. */
export function postJson<T>(hub: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method: 'POST' };
  if (body !== undefined) {
    init.headers = { 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  return requestJson<T>(hub, path, init);
}

/**
 * Every failure is a CliError with exit code 1: the hub unreachable (with
 * what to check), or the hub's own error message and details when it refused.
 */
async function requestJson<T>(hub: string, path: string, init: RequestInit): Promise<T> {
  let res: Response;
  const url = new URL(path, hub.endsWith('/') ? hub : `${hub}/`);
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const c = (err as { cause?: { code?: string; errors?: Array<{ code?: string }> } }).cause;
    const cause = c?.code ?? c?.errors?.[0]?.code ?? (err as Error).message;
    throw new CliError(`cannot reach the hub at ${hub} (${cause}). Is "edgefed start" running? Use --hub URL or EDGEFED_HUB.`, 1);
  }
  const body = (await res.json().catch(() => null)) as (ErrorBody & T) | null;
  if (!res.ok) {
    const why = body?.error ? `${body.error.message ?? ''}${body.error.details ? `: ${body.error.details.join('; ')}` : ''}` : res.statusText;
    throw new CliError(`hub answered ${res.status}: ${why}`, 1);
  }
  if (body === null) throw new CliError(`hub at ${hub} did not answer JSON`, 1);
  return body;
}
