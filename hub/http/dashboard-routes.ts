/**
 * The fleet dashboard: static assets served at `/` (filled in by the
 * dashboard work; the live data comes from GET /federation/events).
 */
import type { Route } from './route.js';

export const dashboardRoutes: Route[] = [];
