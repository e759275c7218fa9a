// @ts-check
/**
 * JSON calls to the hub's HTTP API with the page's token. A 401 asks the
 * operator to sign in again (the token expired or was never given).
 */
import { errorMessage } from './feed.js';

/**
 * What a call answers: the body as lib/api.ts types it (null if the hub sent no JSON), or why it failed.
 * @template T
 * @typedef {{ ok: true, status: number, body: T | null } | { ok: false, status: number, message: string, details: string[] }} ApiResult
 */

/**
 * @param {{ token: () => string|null, onUnauthorized: (message: string) => void }} opts
 */
export function createApi(opts) {
  /** @template T @param {string} method @param {string} path @param {unknown} [body] @returns {Promise<ApiResult<T>>} */
  async function call(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' };
    const token = opts.token();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, { method, headers, cache: 'no-store', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (err) {
      return { ok: false, status: 0, message: `the hub did not answer (${err instanceof Error ? err.message : 'network error'})`, details: [] };
    }
    if (res.ok) return { ok: true, status: res.status, body: await res.json().catch(() => null) };
    const { message, details } = await failure(res);
    if (res.status === 401) opts.onUnauthorized(message);
    return { ok: false, status: res.status, message, details };
  }
  return {
    /** @template [T=unknown] @param {string} path @returns {Promise<ApiResult<T>>} */
    get: (path) => call('GET', path),
    /** @template [T=unknown] @param {string} path @param {unknown} body @returns {Promise<ApiResult<T>>} */
    post: (path, body) => call('POST', path, body),
  };
}

/** @param {Response} res @returns {Promise<{message: string, details: string[]}>} */
async function failure(res) {
  const copy = res.clone();
  try {
    const body = await res.json();
    const details = Array.isArray(body?.error?.details) ? body.error.details.filter(/** @param {unknown} d */ (d) => typeof d === 'string') : [];
    if (typeof body?.error?.message === 'string') return { message: body.error.message, details };
  } catch {
    // not JSON: use the status line
  }
  return { message: await errorMessage(copy), details: [] };
}
