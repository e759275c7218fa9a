// @ts-check
/**
 * The live feed: GET /federation/events read with fetch() so that it can
 * carry "Authorization: Bearer" (EventSource cannot). Every (re)connect
 * begins with a snapshot that replaces the page's state. After an end or an
 * error it reconnects in 2 s; after a 401/403 it waits for a new token
 * instead of retrying a token the hub already refused.
 */
import { createSseParser } from './sse.js';

export const RETRY_MS = 2000;
/** The hub sends a comment every 15 s: silence for this long means a dead connection nobody closed. */
export const SILENCE_MS = 45_000;

/**
 * @typedef {'connecting'|'live'|'disconnected'|'unauthorized'|'stopped'} FeedState
 * @typedef {{
 *   url: string,
 *   token: () => string|null,
 *   onEvent: (type: string, data: unknown) => void,
 *   onState: (state: FeedState, detail?: string) => void,
 *   onRefused: (status: number, message: string) => void,
 * }} FeedOptions
 * @param {FeedOptions} opts
 */
export function createFeed(opts) {
  /** @type {AbortController|null} */
  let controller = null;
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let retryTimer;
  let generation = 0;

  function start() {
    stop();
    const mine = ++generation;
    controller = new AbortController();
    run(mine, controller).catch(() => undefined);
  }

  function stop() {
    generation += 1;
    clearTimeout(retryTimer);
    controller?.abort();
    controller = null;
  }

  /** @param {number} mine @param {AbortController} ctl */
  async function run(mine, ctl) {
    const current = () => mine === generation;
    opts.onState('connecting');
    let detail = 'connection lost';
    try {
      const res = await fetch(opts.url, { headers: headers(opts.token()), signal: ctl.signal, cache: 'no-store' });
      if (res.status === 401 || res.status === 403) {
        const message = await errorMessage(res);
        if (current()) {
          opts.onState('unauthorized', message);
          opts.onRefused(res.status, message);
        }
        return;
      }
      if (!res.ok || !res.body) throw new Error(`the hub answered ${res.status}: ${await errorMessage(res)}`);
      await read(res.body, ctl, current);
      detail = 'the hub closed the stream';
    } catch (err) {
      if (!current()) return;
      detail = err instanceof Error && err.name !== 'AbortError' ? err.message : 'no data for too long';
    }
    if (!current()) return;
    opts.onState('disconnected', `${detail}; reconnecting in ${RETRY_MS / 1000} s`);
    retryTimer = setTimeout(() => { if (current()) start(); }, RETRY_MS);
  }

  /** @param {ReadableStream<Uint8Array>} body @param {AbortController} ctl @param {() => boolean} current */
  async function read(body, ctl, current) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let live = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    let silence;
    const watch = () => {
      clearTimeout(silence);
      silence = setTimeout(() => ctl.abort(), SILENCE_MS);
    };
    const parser = createSseParser(({ type, data }) => {
      if (!current()) return;
      if (!live && type !== 'snapshot') return; // nothing counts before the snapshot it builds on
      // A payload the page cannot parse would leave it out of step: throw, drop the stream, resync.
      opts.onEvent(type, JSON.parse(data));
      if (!live) {
        live = true;
        opts.onState('live');
      }
    });
    try {
      watch();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || !current()) break;
        watch();
        parser.push(decoder.decode(value, { stream: true }));
      }
    } finally {
      clearTimeout(silence);
      reader.cancel().catch(() => undefined);
    }
  }

  return { start, stop };
}

/** @param {string|null} token */
export function headers(token) {
  /** @type {Record<string, string>} */
  const h = { accept: 'text/event-stream' };
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

/** The API's `{error:{message}}`, or the status text. @param {Response} res */
export async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.message === 'string') return body.error.message;
  } catch {
    // not JSON: fall through
  }
  return `HTTP ${res.status} ${res.statusText}`.trim();
}
