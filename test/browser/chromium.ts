/**
 * Headless Chromium for the dashboard tests: Debian's /usr/bin/chromium
 * driven by playwright-core (nothing is downloaded), a fresh profile per
 * test, and the flags that keep it off the network: on a machine without
 * internet, background networking and component updates retry forever.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Scope } from '../helpers/scope.js';
import { withTimeout } from '../helpers/time.js';

export const CHROMIUM = process.env.EDGEFED_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export interface BrowserPage {
  page: Page;
  context: BrowserContext;
  /** Uncaught exceptions in the page, and console errors other than failed loads (a 401 logs one by design). */
  errors: string[];
}

/** A fresh browser with one page, closed (and its profile removed) when the test's scope closes. */
export async function openPage(scope: Scope, viewport = { width: 1440, height: 900 }): Promise<BrowserPage> {
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-chromium-'));
  scope.defer(() => fs.rm(profile, { recursive: true, force: true }));
  const context = await withTimeout(chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport, timeout: 30_000,
  }), 40_000, 'chromium launch');
  scope.defer(() => withTimeout(context.close(), 10_000, 'chromium close'));
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] ?? await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) errors.push(`console: ${msg.text()}`);
  });
  return { page, context, errors };
}

/** Where screenshots go: $EDGEFED_ARTIFACTS, default test-artifacts/ at the package root (gitignored). */
export async function artifactsDir(): Promise<string> {
  const dir = path.resolve(ROOT, process.env.EDGEFED_ARTIFACTS ?? 'test-artifacts');
  await fs.mkdir(dir, { recursive: true });
  return dir;
}

/** Rows of the node table that exist in the DOM (visible or pooled). */
export function domRows(page: Page): Promise<number> {
  return page.locator('#nodes-rows .row').count();
}

/** Node ids of the rows on screen, top to bottom. */
export function shownIds(page: Page): Promise<string[]> {
  return page.locator('#nodes-rows .row:not([hidden])').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.nodeId ?? ''));
}
