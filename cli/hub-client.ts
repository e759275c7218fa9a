/** A small client of the hub's HTTP API for CLI commands (`--hub URL`, `--token JWT`). */
import type { ApiNode, ApiNodeList } from '../lib/api.js';
import { CliError, str, type Flags, type FlagSpecs } from './args.js';

export const DEFAULT_HUB_URL = 'http://127.0.0.1:8080';

/** Where the hub's API is, and the bearer token for a hub started with `--auth jwt`. */
export interface HubTarget { url: string; token?: string }

/** The flags of every command that talks to the hub. */
export const HUB_FLAGS: FlagSpecs = {
  hub: { type: 'string', value: 'URL', help: 'HTTP address of the hub', default: DEFAULT_HUB_URL },
  token: { type: 'string', value: 'JWT', help: 'Bearer token for a hub with --auth jwt ("edgefed token issue --role operator"); prefer EDGEFED_TOKEN' },
};

export function hubOf(flags: Flags): HubTarget {
  const token = str(flags, 'token');
  return { url: str(flags, 'hub') ?? DEFAULT_HUB_URL, ...(token ? { token: token.trim() } : {}) };
}

interface ErrorBody { error?: { message?: string; details?: string[] } }

/** The hub refused a request (`status` its HTTP status) or could not be reached (`status` 0); exit code 1. */
export class HubRequestError extends CliError {
  constructor(message: string, readonly status: number) { super(message, 1); }
}

export function getJson<T>(hub: HubTarget, path: string): Promise<T> {
  return requestJson<T>(hub, path, {});
}

/** Nodes the CLI asks for per request: a fleet of 100,000 is 100 answers of ~0.5 MB, not one of 50 MB. */
export const NODE_PAGE = 1000;

/**
 * Every node matching `query` (capability, status, label), a page at a
 * time, in the API's order; stops after `max`.
 */
export async function listAllNodes(hub: HubTarget, query: URLSearchParams, max = Infinity): Promise<ApiNode[]> {
  const nodes: ApiNode[] = [];
  let after: string | null = null;
  do {
    const q = new URLSearchParams(query);
    q.set('limit', String(Math.min(NODE_PAGE, max - nodes.length)));
    if (after !== null) q.set('after', after);
    const page: ApiNodeList = await getJson<ApiNodeList>(hub, `federation/nodes?${q.toString()}`);
    nodes.push(...page.nodes);
    after = page.next;
  } while (after !== null && nodes.length < max);
  return nodes;
}

/** POSTs `body` as JSON (no body at all when undefined) and reads the JSON answer. */
export function postJson<T>(hub: HubTarget, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method: 'POST' };
  if (body !== undefined) {
    init.headers = { 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  return requestJson<T>(hub, path, init);
}

export function deleteJson<T>(hub: HubTarget, path: string): Promise<T> {
  return requestJson<T>(hub, path, { method: 'DELETE' });
}

/** PATCHes `body` as JSON with extra headers (If-Match) and reads the JSON answer. */
export function patchJson<T>(hub: HubTarget, path: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
  return requestJson<T>(hub, path, { method: 'PATCH', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/**
 * Every failure is a CliError with exit code 1: the hub unreachable (with
 * what to check), or the hub's own error message and details when it refused.
 */
async function requestJson<T>(target: HubTarget, path: string, init: RequestInit, followed = false): Promise<T> {
  let res: Response;
  const hub = target.url;
  const url = new URL(path, hub.endsWith('/') ? hub : `${hub}/`);
  const headers = { ...(init.headers as Record<string, string> | undefined), ...(target.token ? { authorization: `Bearer ${target.token}` } : {}) };
  try {
    res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const c = (err as { cause?: { code?: string; errors?: Array<{ code?: string }> } }).cause;
    const cause = c?.code ?? c?.errors?.[0]?.code ?? (err as Error).message;
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(cause)) {
      throw new CliError(`the hub at ${hub} answered, but its TLS certificate is not trusted (${cause}). For a private CA (edgefed certs dev), run with NODE_EXTRA_CA_CERTS=ca.pem.`, 1);
    }
    throw new HubRequestError(`cannot reach the hub at ${hub} (${cause}). Is "edgefed start" running? Use --hub URL or EDGEFED_HUB.`, 0);
  }
  // An HA standby refuses writes and names the active hub: the write goes there, once.
  const active = res.status === 503 ? res.headers.get('edgefed-active-hub') : null;
  if (active && !followed) {
    await res.body?.cancel();
    return requestJson(target.token ? { url: active, token: target.token } : { url: active }, path, init, true);
  }
  const body = (await res.json().catch(() => null)) as (ErrorBody & T) | null;
  if (!res.ok) {
    const why = body?.error ? `${body.error.message ?? ''}${body.error.details ? `: ${body.error.details.join('; ')}` : ''}` : res.statusText;
    const hint = res.status === 401 ? ' (give a token with --token or EDGEFED_TOKEN)' : '';
    throw new HubRequestError(`hub answered ${res.status}: ${why}${hint}`, res.status);
  }
  if (body === null) throw new CliError(`hub at ${hub} did not answer JSON`, 1);
  return body;
}
