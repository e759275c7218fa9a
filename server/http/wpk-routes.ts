/**
 * Work packages over HTTP: create, list, look up and cancel. The handlers
 * only translate: the rules (deadline in the future, who may run it, what a
 * cancel may stop) live in the hub's WPK service, whose refusals
 * (WpkRequestError) keep their status and code here.
 */
import { isValidId } from '../../lib/ids.js';
import { DEFAULT_WPK_LIST_LIMIT, MAX_WPK_LIST_LIMIT } from '../../lib/limits.js';
import { validators } from '../../schemas/index.js';
import { WPK_STATES, type WpkState } from '../../lib/states.js';
import { WpkRequestError, type WpkCursor, type WpkListFilter } from '../../hub/wpk/types.js';
import { HttpError, sendJson } from './respond.js';
import { body, type Route, type RouteHandler } from './route.js';
import { apiWpk, apiWpkList } from './views.js';
import { nextLink } from './paging.js';


function badFilter(message: string): HttpError {
  return new HttpError(400, 'EDGEFED_ERR_BAD_FILTER', message);
}

function notFound(id: string): HttpError {
  return new HttpError(404, 'EDGEFED_ERR_WPK_NOT_FOUND', `no work package "${id}"`);
}

/** An id that can never exist is answered like an unknown one: there is nothing at that path. */
function requireWpkId(id: string | undefined): string {
  if (!isValidId(id)) throw notFound(id ?? '');
  return id;
}

/** Runs a service call, turning its refusals into the HTTP error with the same status and code. */
async function service<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof WpkRequestError) throw new HttpError(err.status, err.code, err.detail);
    throw err;
  }
}

export function parseWpkFilter(url: URL): WpkListFilter {
  const filter: WpkListFilter = { limit: DEFAULT_WPK_LIST_LIMIT };
  const state = url.searchParams.get('state');
  if (state !== null) {
    if (!(WPK_STATES as readonly string[]).includes(state)) throw badFilter(`state must be one of ${WPK_STATES.join(', ')}`);
    filter.state = state as WpkState;
  }
  const capability = url.searchParams.get('capability');
  if (capability !== null) filter.capability = capability;
  const limit = url.searchParams.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!/^\d+$/.test(limit) || n < 1 || n > MAX_WPK_LIST_LIMIT) throw badFilter(`limit must be a whole number from 1 to ${MAX_WPK_LIST_LIMIT}, got "${limit}"`);
    filter.limit = n;
  }
  const after = url.searchParams.get('after');
  if (after !== null) filter.after = parseWpkCursor(after);
  return filter;
}

/** A WPK page's cursor as the API hands it out: `<created_at>.<wpk_id>`, opaque to clients. */
export const wpkCursor = (w: WpkCursor): string => `${w.created_at}.${w.wpk_id}`;

function parseWpkCursor(text: string): WpkCursor {
  const m = /^(\d{1,16})\.([A-Za-z0-9_-]{1,64})$/.exec(text);
  if (!m) throw badFilter(`after must be the \`next\` of a previous page, got "${text}"`);
  return { created_at: Number(m[1]), wpk_id: m[2]! };
}

const createWpk: RouteHandler = async (ctx) => {
  const request = await body(ctx, validators.httpWpkRequest);
  const record = await service(() => ctx.hub.wpks.create(request));
  sendJson(ctx.res, 201, apiWpk(record));
};

const listWpks: RouteHandler = ({ hub, url, res }) => {
  const filter = parseWpkFilter(url);
  const wpks = hub.wpks.list(filter);
  const next = wpks.length === filter.limit ? wpkCursor(wpks.at(-1)!) : null;
  if (next !== null) res.setHeader('link', nextLink(url, next));
  sendJson(res, 200, apiWpkList(wpks, next));
};

const getWpk: RouteHandler = ({ hub, res }, [id]) => {
  const wpkId = requireWpkId(id);
  const record = hub.wpks.get(wpkId);
  if (!record) throw notFound(wpkId);
  sendJson(res, 200, apiWpk(record));
};

const cancelWpk: RouteHandler = async ({ hub, res }, [id]) => {
  const wpkId = requireWpkId(id);
  const record = await service(() => hub.wpks.cancel(wpkId));
  sendJson(res, 200, apiWpk(record));
};

export const wpkRoutes: Route[] = [
  { method: 'POST', pattern: /^\/federation\/wpk$/, handler: createWpk },
  { method: 'GET', pattern: /^\/federation\/wpk$/, handler: listWpks },
  { method: 'GET', pattern: /^\/federation\/wpk\/([^/]+)$/, handler: getWpk },
  { method: 'POST', pattern: /^\/federation\/wpk\/([^/]+)\/cancel$/, handler: cancelWpk },
];
