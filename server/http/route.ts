/**
 * What every route module shares: the route shape the server dispatches on,
 * and reading a request body checked against its JSON Schema (so every body
 * is refused the same way: 400 not JSON, 413 too large, 422 with details).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Validator } from '../../schemas/index.js';
import type { Identity } from '../../auth/types.js';
import type { FleetFeed } from '../feed/index.js';
import type { HubApi } from '../../hub/index.js';
import type { ApiHaStatus } from '../../lib/api.js';
import type { HubMetrics } from '../metrics/index.js';
import type { BrokerView } from '../metrics/broker.js';
import { HttpError, readJsonObject } from './respond.js';

/** What the API serves besides the hub's own state: metrics, the dashboard's feed, whether auth is on. */
export interface LiveServices {
  metrics: HubMetrics; feed: FleetFeed; auth: 'jwt' | 'none'; broker?: BrokerView;
  /** HA: this hub's role and who is active. */
  ha?: () => ApiHaStatus;
}
export interface RouteContext {
  hub: HubApi; live: LiveServices; bodyLimit: number; url: URL; req: IncomingMessage; res: ServerResponse;
  /** Who called, when auth is on (absent on public routes and without auth). */
  identity?: Identity;
}
/** `params` are the pattern's capture groups, percent-decoded. */
export type RouteHandler = (ctx: RouteContext, params: string[]) => Promise<void> | void;
export interface Route { method: string; pattern: RegExp; handler: RouteHandler }

/** The request body as `check` accepts it, or a 422 `EDGEFED_ERR_SCHEMA` listing what is wrong. */
export async function body<T>(ctx: RouteContext, check: Validator<T>): Promise<T> {
  const result = check(await readJsonObject(ctx.req, ctx.bodyLimit));
  if (!result.ok) throw new HttpError(422, 'EDGEFED_ERR_SCHEMA', 'request body does not match the schema', result.errors);
  return result.value;
}
