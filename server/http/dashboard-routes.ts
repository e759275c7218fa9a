/**
 * The fleet dashboard: static assets served at `/` and `/dashboard/<file>`
 * (the live data comes from GET /federation/events). The assets are plain
 * files committed in the package's `dashboard/` folder: no build step, no
 * data in them, so they are public even with authentication on (see auth.ts).
 *
 * Only the files listed when this module loads can be served: a request names
 * a key of that list, never a path, so `..` or an encoded slash cannot reach
 * anything else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError } from './respond.js';
import type { Route, RouteHandler } from './route.js';

/** No inline script or style anywhere in the page, so the policy can forbid both. */
export const DASHBOARD_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Lower-case names with one known extension: nothing hidden, no separators. */
const ASSET_NAME = /^[a-z0-9][a-z0-9-]{0,63}\.(html|js|css|svg|png)$/;

export interface AssetTable {
  /** The folder the assets came from, or undefined when none was found. */
  readonly dir: string | undefined;
  /** File name -> absolute path, for the allowed names found at startup. */
  readonly files: ReadonlyMap<string, string>;
}

/**
 * The package's `dashboard/` folder: walks up from this module, which is
 * `hub/http/` from source (tsx) and `dist/hub/http/` when built.
 */
export function findDashboardDir(from: string = path.dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'dashboard');
    if (fs.existsSync(path.join(candidate, 'index.html')) && fs.existsSync(path.join(dir, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The whitelist: allowed names of regular files directly in `dir` whose real path stays inside it. */
export function loadAssetTable(dir: string | undefined): AssetTable {
  const files = new Map<string, string>();
  if (dir === undefined) return { dir, files };
  const root = fs.realpathSync(dir);
  for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
    if (!entry.isFile() || !ASSET_NAME.test(entry.name)) continue;
    const full = fs.realpathSync(path.join(root, entry.name));
    if (path.dirname(full) === root) files.set(entry.name, full);
  }
  return { dir: root, files };
}

export function contentTypeOf(name: string): string {
  return CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream';
}

/** Routes serving `table`: `GET /` is index.html, `GET /dashboard/<name>` one listed file. */
export function makeDashboardRoutes(table: AssetTable): Route[] {
  const serve = (name: string): RouteHandler => async ({ res }) => {
    const file = table.files.get(name);
    if (file === undefined) {
      const why = table.dir === undefined ? 'the dashboard assets are not installed (no dashboard/ folder in the package)' : `no dashboard file "${name}"`;
      throw new HttpError(404, 'EDGEFED_ERR_NOT_FOUND', why);
    }
    const content = await fs.promises.readFile(file);
    res.writeHead(200, {
      'content-type': contentTypeOf(name),
      'content-length': content.length,
      // Revalidate every load: an upgraded hub must never run yesterday's page.
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'content-security-policy': DASHBOARD_CSP,
      'referrer-policy': 'no-referrer',
    });
    res.end(content);
  };
  const index = serve('index.html');
  return [
    { method: 'GET', pattern: /^\/$/, handler: index },
    { method: 'GET', pattern: /^\/dashboard\/([^/]+)$/, handler: (ctx, [name]) => serve(name ?? '')(ctx, []) },
  ];
}

export const dashboardRoutes: Route[] = makeDashboardRoutes(loadAssetTable(findDashboardDir()));
