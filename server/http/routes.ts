/**
 * The report's HTTP contract, kept: health, node listing and lookup,
 * registration and heartbeats for devices that only speak HTTP. Bodies are
 * checked against the same JSON Schemas as MQTT payloads.
 */
import { isValidId } from '../../lib/ids.js';
import { validators } from '../../schemas/index.js';
import type { NodeFilter } from '../../hub/index.js';
import type { ApiHeartbeatAnswer, ApiRegistered } from '../../lib/api.js';
import { NODE_STATES } from '../../lib/states.js';
import { HttpError, sendJson } from './respond.js';
import { body, type Route, type RouteHandler } from './route.js';
import { dashboardRoutes } from './dashboard-routes.js';
import { liveRoutes } from './live-routes.js';
import { wpkRoutes } from './wpk-routes.js';
import { stateRoutes } from './state-routes.js';
import { health } from './health.js';
import { apiNode, apiNodeList } from './views.js';
import { nextLink, parsePage } from './paging.js';

export type { RouteContext } from './route.js';

function requireId(id: string | undefined): string {
  if (!isValidId(id)) throw new HttpError(404, 'EDGEFED_ERR_NODE_NOT_FOUND', `no node "${id ?? ''}" (not a valid node id)`);
  return id;
}

export function parseFilter(url: URL): NodeFilter {
  const filter: NodeFilter = {};
  const status = url.searchParams.get('status');
  if (status !== null) {
    if (!(NODE_STATES as readonly string[]).includes(status)) {
      throw new HttpError(400, 'EDGEFED_ERR_BAD_FILTER', `status must be one of ${NODE_STATES.join(', ')}`);
    }
    filter.status = status;
  }
  const capability = url.searchParams.get('capability');
  if (capability !== null) filter.capability = capability;
  const labels = url.searchParams.getAll('label');
  if (labels.length > 0) {
    filter.labels = {};
    for (const l of labels) {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new HttpError(400, 'EDGEFED_ERR_BAD_FILTER', `label filter "${l}" must be name=value`);
      filter.labels[l.slice(0, eq)] = l.slice(eq + 1);
    }
  }
  return filter;
}

const listNodes: RouteHandler = ({ hub, url, res }) => {
  const filter = parseFilter(url);
  const page = parsePage(url);
  if (!page) {
    sendJson(res, 200, apiNodeList(hub.nodes(filter)));
    return;
  }
  const { nodes, next } = hub.nodePage(filter, page);
  if (next !== null) res.setHeader('link', nextLink(url, next));
  sendJson(res, 200, apiNodeList(nodes, next));
};


const getNode: RouteHandler = ({ hub, res }, [id]) => {
  const record = hub.node(requireId(id));
  if (!record) throw new HttpError(404, 'EDGEFED_ERR_NODE_NOT_FOUND', `no node "${id}" in the registry`);
  sendJson(res, 200, apiNode(record));
};

const removeNode: RouteHandler = ({ hub, res }, [id]) => {
  const nodeId = requireId(id);
  if (!hub.removeNode(nodeId)) throw new HttpError(404, 'EDGEFED_ERR_NODE_NOT_FOUND', `no node "${nodeId}" in the registry`);
  sendJson(res, 200, { removed: nodeId });
};

const register: RouteHandler = async (ctx) => {
  const reg = await body(ctx, validators.httpRegistration);
  const { record, created } = ctx.hub.register(reg);
  const answer: ApiRegistered = { status: 'registered', registration_id: record.id, node_id: record.node_id, boot_id: record.boot_id };
  sendJson(ctx.res, created ? 201 : 200, answer);
};

const heartbeat: RouteHandler = async (ctx, [id]) => {
  const nodeId = requireId(id);
  const hb = await body(ctx, validators.httpHeartbeat);
  const record = ctx.hub.heartbeat(nodeId, hb);
  if (!record) throw new HttpError(404, 'EDGEFED_ERR_NODE_NOT_FOUND', `no registered node "${nodeId}"; register it first with POST /federation/register`);
  const answer: ApiHeartbeatAnswer = { status: record.status, last_seen: record.last_seen };
  sendJson(ctx.res, 200, answer);
};

export const routes: Route[] = [
  { method: 'GET', pattern: /^\/health$/, handler: health },
  { method: 'GET', pattern: /^\/federation\/nodes$/, handler: listNodes },
  { method: 'GET', pattern: /^\/federation\/nodes\/([^/]+)$/, handler: getNode },
  { method: 'DELETE', pattern: /^\/federation\/nodes\/([^/]+)$/, handler: removeNode },
  { method: 'POST', pattern: /^\/federation\/register$/, handler: register },
  { method: 'POST', pattern: /^\/federation\/nodes\/([^/]+)\/heartbeat$/, handler: heartbeat },
  ...wpkRoutes,
  ...stateRoutes,
  ...liveRoutes,
  ...dashboardRoutes,
];
