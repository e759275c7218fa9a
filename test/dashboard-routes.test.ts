/**
 * The dashboard's static assets: served with a strict CSP and no caching
 * surprises, only from the whitelist read at startup (no path traversal),
 * found from source and from dist/, and public even with auth on, while the
 * data behind them still needs a token.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DASHBOARD_CSP, findDashboardDir, loadAssetTable } from '../server/http/dashboard-routes.js';
import { isPublic } from '../server/http/auth.js';
import type { Federation } from '../server/federation.js';
import { federation } from './helpers/federation.js';
import { bounded, type Scope } from './helpers/scope.js';
import { withTimeout } from './helpers/time.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const test = suite('dashboard: static assets');

interface Raw { status: number; headers: http.IncomingHttpHeaders; body: string }

/** A request with the path exactly as given: fetch() would normalise `..` away before sending. */
function raw(fed: Federation, rawPath: string, method = 'GET'): Promise<Raw> {
  const url = new URL(fed.api.url);
  return withTimeout(new Promise<Raw>((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: rawPath }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  }), 3000, `${method} ${rawPath}`);
}

async function open(scope: Scope, auth = false): Promise<Federation> {
  if (!auth) {
    const fed = await federation();
    scope.defer(() => fed.stop());
    return fed;
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-dash-auth-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const fed = await federation({ dataDir: dir, auth: {} });
  scope.defer(() => fed.stop());
  return fed;
}

test('GET / is index.html with a strict CSP, nosniff and no-cache', bounded(async (scope) => {
  const fed = await open(scope);
  const res = await raw(fed, '/');
  assert.is(res.status, 200);
  assert.is(res.headers['content-type'], 'text/html; charset=utf-8');
  assert.is(res.headers['content-security-policy'], DASHBOARD_CSP);
  assert.ok(DASHBOARD_CSP.includes("script-src 'self'") && DASHBOARD_CSP.includes("frame-ancestors 'none'"));
  assert.is(res.headers['x-content-type-options'], 'nosniff');
  assert.is(res.headers['cache-control'], 'no-cache');
  assert.match(res.body, /<script type="module" src="\/dashboard\/app\.js"><\/script>/);
}));

test('every asset has its content type; the page has no inline script or style (the CSP would block them)', bounded(async (scope) => {
  const fed = await open(scope);
  const js = await raw(fed, '/dashboard/app.js');
  assert.is(js.status, 200);
  assert.is(js.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.is(js.headers['content-security-policy'], DASHBOARD_CSP);
  const css = await raw(fed, '/dashboard/style.css');
  assert.is(css.headers['content-type'], 'text/css; charset=utf-8');
  const html = await fs.readFile(path.join(ROOT, 'dashboard', 'index.html'), 'utf8');
  assert.not.match(html, /<script(?![^>]*\ssrc=)[^>]*>/i, 'no inline <script>');
  assert.not.match(html, /<style/i, 'no <style> element');
  assert.not.match(html, /\sstyle\s*=/i, 'no style attribute');
  assert.not.match(html, /\son[a-z]+\s*=/i, 'no inline event handler');
  for (const name of (await fs.readdir(path.join(ROOT, 'dashboard'))).filter((f) => f.endsWith('.js'))) {
    const source = await fs.readFile(path.join(ROOT, 'dashboard', name), 'utf8');
    assert.not.match(source, /\.innerHTML\s*=|insertAdjacentHTML|document\.write/, `${name} writes text only`);
    assert.is((await raw(fed, `/dashboard/${name}`)).status, 200, `${name} is served`);
  }
}));

test('no path traversal: only whitelisted names are served', bounded(async (scope) => {
  const fed = await open(scope);
  for (const p of ['/dashboard/..%2Fpackage.json', '/dashboard/%2e%2e%2fpackage.json', '/dashboard/..%5Cpackage.json',
    '/dashboard/.hidden.js', '/dashboard/nope.js', '/dashboard/index.HTML', '/dashboard/%00app.js', '/dashboard/app.js%00']) {
    const res = await raw(fed, p);
    assert.ok(res.status === 404 || res.status === 400, `${p} answers ${res.status}`);
    assert.not.match(res.body, /"name": "edgefed"/, `${p} leaks nothing`);
  }
  const dotdot = await raw(fed, '/dashboard/../package.json');
  assert.not.match(dotdot.body, /"name": "edgefed"/);
  const post = await raw(fed, '/', 'POST');
  assert.is(post.status, 405);
}));

test('the whitelist: a symlink leading out of the folder and odd names are left out', bounded(async (scope) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-dash-assets-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const outside = path.join(dir, 'secret.txt');
  await fs.writeFile(outside, 'secret');
  const assets = path.join(dir, 'dashboard');
  await fs.mkdir(assets);
  await fs.writeFile(path.join(assets, 'index.html'), '<!doctype html>');
  await fs.writeFile(path.join(assets, 'app.js'), '');
  await fs.writeFile(path.join(assets, 'Notes.md'), '');
  await fs.writeFile(path.join(assets, '.env.js'), '');
  await fs.symlink(outside, path.join(assets, 'leak.js'));
  await fs.mkdir(path.join(assets, 'sub.js'));
  const table = loadAssetTable(assets);
  assert.equal([...table.files.keys()].sort(), ['app.js', 'index.html']);
  assert.is(loadAssetTable(undefined).files.size, 0);
}));

test('the assets folder is found from source (hub/http) and from dist/hub/http', () => {
  const expected = path.join(ROOT, 'dashboard');
  assert.is(findDashboardDir(path.join(ROOT, 'hub', 'http')), expected);
  assert.is(findDashboardDir(path.join(ROOT, 'dist', 'hub', 'http')), expected);
  assert.is(findDashboardDir(os.tmpdir()), undefined);
});

test('auth on: the page and its assets load without a token; the data still needs one', bounded(async (scope) => {
  const fed = await open(scope, true);
  assert.is((await raw(fed, '/')).status, 200);
  assert.is((await raw(fed, '/dashboard/app.js')).status, 200);
  assert.is((await raw(fed, '/dashboard/nope.js')).status, 404, 'an unknown asset is a plain 404');
  const nodes = await raw(fed, '/federation/nodes');
  assert.is(nodes.status, 401);
  assert.is(nodes.headers['www-authenticate'], 'Bearer');
  assert.is((await raw(fed, '/', 'POST')).status, 401, 'only GET is public');
  assert.ok(isPublic('GET', '/dashboard/style.css'));
  assert.not.ok(isPublic('GET', '/dashboardx'));
  assert.not.ok(isPublic('GET', '/federation/events'));
}, { timeoutMs: 10_000 }));

test.run();
