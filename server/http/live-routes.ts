/**
 * Routes for watching the hub: `GET /metrics` (Prometheus) and
 * `GET /federation/events` (Server-Sent Events for the dashboard). With auth
 * on, both need a bearer token like every route but /health (Prometheus
 * sends one with `authorization.credentials_file`).
 */
import type { ServerResponse } from 'node:http';
import { atEpochSeconds } from '../../lib/at-time.js';
import type { FeedClient } from '../feed/index.js';
import type { Route, RouteHandler } from './route.js';

/** A page that reads slower than the hub writes is let go past this much unsent data (it reconnects and gets a fresh snapshot). */
export const MAX_SSE_BACKLOG_BYTES = 8 * 1024 * 1024;

const metrics: RouteHandler = async ({ live, res }) => {
  const text = await live.metrics.text();
  res.writeHead(200, { 'content-type': live.metrics.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
};

const events: RouteHandler = ({ hub, live, identity, req, res }) => {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    // Tells nginx and similar proxies not to buffer the stream.
    'x-accel-buffering': 'no',
  });
  // HEAD: the headers alone (a stream that sends nothing would stay open until the client leaves).
  if (req.method === 'HEAD') { res.end(); return; }
  res.write('retry: 2000\n\n');
  const client = sseClient(res, () => {
    hub.log.warn({ backlog_bytes: res.writableLength }, 'dashboard stream dropped: the page reads too slowly');
    res.destroy();
  });
  const unsubscribe = live.feed.subscribe(client);
  req.socket.setNoDelay(true);
  // A stream must not outlive the token that opened it: it ends when the verifier
  // stops accepting the token (`exp` plus its clock tolerance), and the page's
  // reconnect then needs a valid token (a 401 shows its sign-in box).
  const cancelExpiry = identity ? atEpochSeconds(identity.acceptedUntil, () => res.end()) : undefined;
  res.once('close', () => { unsubscribe(); cancelExpiry?.(); });
};

function sseClient(res: ServerResponse, onBacklog: () => void): FeedClient {
  const write = (text: string) => {
    if (res.destroyed) return;
    res.write(text);
    if (res.writableLength > MAX_SSE_BACKLOG_BYTES) onBacklog();
  };
  return {
    // `data` is one line of JSON: JSON.stringify never emits a raw newline.
    send: (event, data) => write(`event: ${event}\ndata: ${data}\n\n`),
    ping: () => write(': ping\n\n'),
  };
}

export const liveRoutes: Route[] = [
  { method: 'GET', pattern: /^\/metrics$/, handler: metrics },
  { method: 'GET', pattern: /^\/federation\/events$/, handler: events },
];
