/**
 * Paged lists (`limit` and `after`): a page's `next` cursor goes back as
 * `after`, and the `Link: <...>; rel="next"` header (RFC 8288) carries the
 * same query with it, for clients that follow links.
 */
import { isValidId } from '../../lib/ids.js';
import { MAX_NODE_PAGE_LIMIT } from '../../lib/limits.js';
import type { PageRequest } from '../../hub/index.js';
import { HttpError } from './respond.js';

/** `limit` (1..MAX_NODE_PAGE_LIMIT) and `after` (a node id); neither: the whole list, as before paging. */
export function parsePage(url: URL): PageRequest | undefined {
  const limit = url.searchParams.get('limit');
  const after = url.searchParams.get('after');
  if (limit === null && after === null) return undefined;
  const n = limit === null ? MAX_NODE_PAGE_LIMIT : Number(limit);
  if (limit !== null && (!/^\d+$/.test(limit) || n < 1 || n > MAX_NODE_PAGE_LIMIT)) {
    throw new HttpError(400, 'EDGEFED_ERR_BAD_FILTER', `limit must be a whole number from 1 to ${MAX_NODE_PAGE_LIMIT}, got "${limit}"`);
  }
  if (after !== null && !isValidId(after)) {
    throw new HttpError(400, 'EDGEFED_ERR_BAD_FILTER', `after must be the \`next\` of a previous page (a node id), got "${after}"`);
  }
  return { limit: n, ...(after !== null ? { after } : {}) };
}

/** RFC 8288: the same query with `after` moved on, relative to the API's root. */
export function nextLink(url: URL, next: string): string {
  const q = new URLSearchParams(url.searchParams);
  q.set('after', next);
  return `<${url.pathname}?${q.toString()}>; rel="next"`;
}
