/**
 * The hub's HTTP API on node:http: a handful of routes does not need a
 * framework. Every failure answers JSON `{error:{code,message,details}}`;
 * refusals are logged once and counted like MQTT ones.
 */
import { isEdgefedError, type EdgefedError } from '../../lib/errors.js';
import type { ApiHaStatus } from '../../lib/api.js';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { HubApi } from '../../hub/index.js';
import type { Verifier } from '../../auth/types.js';
import { MAX_PAYLOAD_BYTES } from '../../lib/limits.js';
import { serverTlsOptions, type TlsMaterial } from '../../lib/tls-material.js';
import { errorFields } from '../../lib/log.js';
import type { RefusalCode } from '../../lib/wire.js';
import { authorizeRequest, isPublic } from './auth.js';
import { HttpError, sendError } from './respond.js';
import { FleetFeed, type FeedOptions } from '../feed/index.js';
import { createHubMetrics } from '../metrics/index.js';
import type { BrokerView } from '../metrics/broker.js';
import { ActivitySeries } from '../feed/activity.js';
import type { LiveServices } from './route.js';
import { routes, type RouteContext } from './routes.js';

export interface HttpApiOptions {
  host: string;
  port: number;
  bodyLimit?: number;
  /** With authentication on: every request but GET /health needs a bearer JWT this verifier accepts. */
  verifier?: Verifier;
  /** Serve HTTPS with this certificate and key instead of HTTP; a `ca` requires a client certificate it signed (mutual TLS). */
  tls?: TlsMaterial;
  /** What the embedded broker counts (connections, traffic, refusals), for /health and /metrics. */
  broker?: BrokerView;
  /** The dashboard feed's timers (default: changes every 500 ms, stats every 1 s); tests shorten them. */
  feed?: Pick<FeedOptions, 'batchMs' | 'statsMs' | 'maxNodes'>;
  /** HA: this hub's role and who is active, for /health and the standby's 503s. */
  ha?: () => ApiHaStatus;
}

export interface HttpApi { readonly port: number; readonly url: string; close(): Promise<void> }

export async function startHttpApi(hub: HubApi, opts: HttpApiOptions): Promise<HttpApi> {
  const bodyLimit = opts.bodyLimit ?? MAX_PAYLOAD_BYTES;
  const auth = opts.verifier ? 'jwt' : 'none';
  // Dispatches, finished WPKs and latency per second over the last five minutes: the dashboard's chart.
  const activity = new ActivitySeries(hub.events);
  const live: LiveServices = {
    metrics: createHubMetrics(hub, opts.broker), feed: new FleetFeed(hub, { ...opts.feed, auth, activity }), auth, ...(opts.broker ? { broker: opts.broker } : {}),
    ...(opts.ha ? { ha: opts.ha } : {}),
  };
  const server = createServer(opts.tls, (req, res) => {
    handle({ hub, live, bodyLimit, verifier: opts.verifier }, req, res).catch((err: Error) => {
      hub.log.error(errorFields(err), 'HTTP request failed');
      if (!res.headersSent) sendError(res, new HttpError(500, 'EDGEFED_ERR_INTERNAL', 'internal error'));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  const stopLive = () => { live.feed.close(); live.metrics.close(); };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  }).catch((err: unknown) => { stopLive(); throw err; });
  // Accept errors (EMFILE...) after start must not crash the hub and its broker.
  server.on('error', (err) => hub.log.error(errorFields(err), 'HTTP server error'));
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    port,
    url: `${opts.tls ? 'https' : 'http'}://${host}:${port}`,
    close: () => new Promise<void>((resolve) => {
      stopLive();
      server.close(() => resolve());
      // Also ends open dashboard streams, which would otherwise hold close() for ever.
      server.closeAllConnections();
    }),
  };
}

/** One listener, HTTP or HTTPS: a plain request on the HTTPS port fails its handshake and is never served. */
function createServer(tls: TlsMaterial | undefined, listener: http.RequestListener): http.Server {
  return tls ? https.createServer(serverTlsOptions(tls), listener) : http.createServer(listener);
}

/** The methods a path allows: HEAD wherever GET is. */
function allowHeader(methods: readonly string[]): string {
  return (methods.includes('GET') ? [...methods, 'HEAD'] : [...methods]).join(', ');
}

function refusalCode(e: HttpError): RefusalCode {
  if (e.status === 401 || e.status === 403) return 'not_allowed';
  if (e.status === 413) return 'too_large';
  return e.code === 'EDGEFED_ERR_BAD_JSON' ? 'not_json' : 'schema';
}

function parseUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://hub');
  } catch {
    throw new HttpError(400, 'EDGEFED_ERR_BAD_PATH', 'the request target is not a valid URL path');
  }
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, 'EDGEFED_ERR_BAD_PATH', `"${part}" is not valid percent-encoding`);
  }
}

interface Served { hub: HubApi; live: LiveServices; bodyLimit: number; verifier: Verifier | undefined }

async function handle({ hub, live, bodyLimit, verifier }: Served, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let url = new URL('http://hub/');
  try {
    url = parseUrl(req.url);
    // HEAD is GET without the body (Node's response sends none): uptime probes and `curl -I` use it.
    const method = req.method === 'HEAD' ? 'GET' : req.method ?? '';
    // Before routing, so that an unauthenticated caller learns nothing of the API but /health.
    const identity = verifier && !isPublic(method, url.pathname) ? await authorizeRequest(verifier, req, url.pathname, method) : undefined;
    const ctx: RouteContext = { hub, live, bodyLimit, url, req, res, ...(identity ? { identity } : {}) };
    const matching = routes.filter((r) => r.pattern.test(url.pathname));
    if (matching.length === 0) throw new HttpError(404, 'EDGEFED_ERR_NOT_FOUND', `no route ${url.pathname}; see docs/api.md`);
    const route = matching.find((r) => r.method === method);
    if (!route) {
      res.setHeader('allow', allowHeader(matching.map((r) => r.method)));
      throw new HttpError(405, 'EDGEFED_ERR_METHOD', `${req.method ?? ''} is not allowed on ${url.pathname}`);
    }
    const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map(decodePathPart);
    await route.handler(ctx, params);
  } catch (err) {
    const e = err instanceof HttpError ? err : storeUnavailable(err) ?? standby(err, res) ?? new HttpError(500, 'EDGEFED_ERR_INTERNAL', 'internal error');
    if (!(err instanceof HttpError) && e.status === 500) hub.log.error({ ...errorFields(err), path: url.pathname }, 'HTTP handler failed');
    if (e.status === 401) res.setHeader('www-authenticate', 'Bearer');
    if (e.status === 400 || e.status === 401 || e.status === 403 || e.status === 413 || e.status === 422) {
      hub.refuse({
        code: refusalCode(e),
        reason: e.details ? `${e.detail}: ${e.details.join('; ')}` : e.detail,
        topic: `${req.method ?? ''} ${url.pathname}`,
        via: 'http',
      });
    }
    if (!res.headersSent) sendError(res, e);
    else res.end();
  }
}

/**
 * A change that could not be written (the store is down, its disk full) is
 * not acknowledged: 503, so that clients retry, with the store's reason
 * (which never holds a password). The outage itself is logged by the hub.
 */
function storeUnavailable(err: unknown): HttpError | undefined {
  if (!isEdgefedError(err) || !/^EDGEFED_ERR_(STORE_|FILE_WRITE)/.test(err.code)) return undefined;
  return new HttpError(503, err.code, `not written, try again: ${err.detail}`);
}

/** A write sent to an HA standby: 503, and the active hub's URL in `Edgefed-Active-Hub` (the CLI follows it). */
function standby(err: unknown, res: http.ServerResponse): HttpError | undefined {
  if (!isEdgefedError(err, 'EDGEFED_ERR_STANDBY')) return undefined;
  const url = (err as EdgefedError & { active?: { info?: { api_url?: string } } }).active?.info?.api_url;
  if (url) res.setHeader('edgefed-active-hub', url);
  res.setHeader('retry-after', '3');
  return new HttpError(503, err.code, err.detail);
}
