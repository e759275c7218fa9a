/**
 * Who may call the HTTP API when authentication is on: a `Bearer` JWT on
 * every request but `GET /health` and the dashboard's static assets,
 * verified by the same Verifier as MQTT connections. Operators and the hub
 * read; only the hub and operators with the `wpk:write` scope create or
 * cancel work packages and register nodes; an agent may only send its own
 * HTTP heartbeat and read its own record.
 */
import type { IncomingMessage } from 'node:http';
import { STATE_WRITE, TokenError, WPK_WRITE, type Identity, type Verifier } from '../../auth/types.js';
import { HttpError } from './respond.js';

/** Paths (after the method) that change the federation and need write rights. */
const WRITES = [/^\/federation\/wpk$/, /^\/federation\/wpk\/[^/]+\/cancel$/, /^\/federation\/register$/, /^\/federation\/nodes\/[^/]+$/];
/** Desired state: its own scope, so a token that may start work need not reconfigure the fleet. */
const STATE_WRITES = /^\/federation\/nodes\/[^/]+\/desired$/;
const OWN_STATE = /^\/federation\/nodes\/([^/]+)\/state$/;
const OWN_HEARTBEAT = /^\/federation\/nodes\/([^/]+)\/heartbeat$/;
const OWN_RECORD = /^\/federation\/nodes\/([^/]+)$/;

/** GET /health, and the dashboard's static assets: they hold no data, and the page needs them to ask for a token. */
export function isPublic(method: string, pathname: string): boolean {
  if (method !== 'GET') return false;
  return pathname === '/health' || pathname === '/' || pathname.startsWith('/dashboard/');
}

/** The caller's identity, or a 401 (no or bad token) / 403 (not allowed) HttpError. */
export async function authorizeRequest(verifier: Verifier, req: IncomingMessage, pathname: string, method = req.method ?? 'GET'): Promise<Identity> {
  const identity = await authenticate(verifier, req.headers.authorization);
  if (!allowed(identity, method, pathname)) {
    const article = /^[aeiou]/.test(identity.role) ? 'an' : 'a';
    const scope = STATE_WRITES.test(pathname) ? STATE_WRITE : WPK_WRITE;
    const hint = identity.role === 'operator' && method !== 'GET' ? ` (it needs the ${scope} scope: edgefed token issue --role operator --scope ${scope})` : '';
    throw new HttpError(403, 'EDGEFED_ERR_FORBIDDEN', `${article} ${identity.role} token for "${identity.subject}" may not ${method} ${pathname}${hint}`);
  }
  return identity;
}

async function authenticate(verifier: Verifier, header: string | undefined): Promise<Identity> {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) throw new HttpError(401, 'EDGEFED_ERR_UNAUTHENTICATED', 'this API needs "Authorization: Bearer <JWT>" (see docs/security.md; "edgefed token issue --role operator" makes one)');
  try {
    return await verifier.verify(match[1]!);
  } catch (err) {
    // The reason, never the token: it is a credential.
    const why = err instanceof TokenError ? `${err.code}: ${err.message}` : 'the token could not be verified';
    throw new HttpError(401, 'EDGEFED_ERR_UNAUTHENTICATED', `bearer token refused (${why})`);
  }
}

function allowed(identity: Identity, method: string, pathname: string): boolean {
  if (identity.role === 'hub') return true;
  if (identity.role === 'operator') {
    if (method === 'GET') return true;
    if (method === 'PATCH' && STATE_WRITES.test(pathname)) return identity.scopes.includes(STATE_WRITE);
    return WRITES.some((p) => p.test(pathname)) && identity.scopes.includes(WPK_WRITE);
  }
  // An agent: only its own heartbeat, record and state.
  const own = method === 'POST' ? OWN_HEARTBEAT.exec(pathname) : method === 'GET' ? OWN_RECORD.exec(pathname) ?? OWN_STATE.exec(pathname) : null;
  return own !== null && decoded(own[1]!) === identity.subject;
}

function decoded(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}
