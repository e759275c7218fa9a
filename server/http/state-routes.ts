/**
 * Desired state over HTTP (issue 16): read a node's desired, reported and
 * delta; change its desired state with a JSON merge patch (RFC 7386),
 * conditionally with `If-Match: "<version>"`. The rules live in the hub's
 * state service; its refusals (StateRequestError) keep their status here.
 */
import { isValidId } from '../../lib/ids.js';
import { parseObject } from '../../lib/json.js';
import { MAX_STATE_BYTES, MAX_STATE_VERSION } from '../../lib/limits.js';
import { StateRequestError } from '../../hub/state/service.js';
import type { StateObject } from '../../lib/desired-state.js';
import { HttpError, sendJson } from './respond.js';
import type { Route, RouteContext, RouteHandler } from './route.js';
import { apiNodeState } from './views.js';

function notFound(id: string): HttpError {
  return new HttpError(404, 'EDGEFED_ERR_NODE_NOT_FOUND', `no node "${id}" in the registry`);
}

function requireId(id: string | undefined): string {
  if (!isValidId(id)) throw notFound(id ?? '');
  return id;
}

/**
 * `If-Match: "3"` (an entity tag, as `ETag` answers it) or `3`; absent: the
 * patch applies whatever the version. A list or `*` is not supported.
 */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,16})"?\s*$/.exec(header);
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_STATE_VERSION) {
    throw new HttpError(400, 'EDGEFED_ERR_BAD_IF_MATCH', `If-Match must be a desired-state version such as "3", got ${JSON.stringify(header.slice(0, 40))}`);
  }
  return n;
}

/**
 * The body: a JSON object (a merge patch whose top level is not an object
 * would replace the whole state with a non-object, which a state cannot be).
 * The patch may be at most the state limit plus room for its `null`s.
 */
async function readPatch(ctx: RouteContext): Promise<StateObject> {
  const limit = Math.min(ctx.bodyLimit, 2 * MAX_STATE_BYTES);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size <= limit) chunks.push(chunk as Buffer);
  }
  if (size > limit) throw new HttpError(413, 'EDGEFED_ERR_BODY_TOO_LARGE', `merge patch is ${size} bytes; the limit is ${limit}`);
  const parsed = parseObject(Buffer.concat(chunks));
  if (!parsed.ok) throw new HttpError(400, parsed.code === 'not_json' ? 'EDGEFED_ERR_BAD_JSON' : 'EDGEFED_ERR_BAD_PATCH', `the body must be a JSON object (an RFC 7386 merge patch): ${parsed.reason}`);
  return parsed.value;
}

function answer(ctx: RouteContext, view: Parameters<typeof apiNodeState>[0]): void {
  ctx.res.setHeader('etag', `"${view.version}"`);
  sendJson(ctx.res, 200, apiNodeState(view));
}

const getState: RouteHandler = (ctx, [id]) => {
  const nodeId = requireId(id);
  const view = ctx.hub.nodeState(nodeId);
  if (!view) throw notFound(nodeId);
  answer(ctx, view);
};

const patchDesired: RouteHandler = async (ctx, [id]) => {
  const nodeId = requireId(id);
  const ifVersion = parseIfMatch(ctx.req.headers['if-match']);
  if (!ctx.hub.node(nodeId)) throw notFound(nodeId);
  const patch = await readPatch(ctx);
  try {
    answer(ctx, ctx.hub.patchDesired(nodeId, patch, ifVersion));
  } catch (err) {
    if (err instanceof StateRequestError) throw new HttpError(err.status, err.code, err.detail);
    throw err;
  }
};

export const stateRoutes: Route[] = [
  { method: 'GET', pattern: /^\/federation\/nodes\/([^/]+)\/state$/, handler: getState },
  { method: 'PATCH', pattern: /^\/federation\/nodes\/([^/]+)\/desired$/, handler: patchDesired },
];
