/**
 * The README tour's first command is `npx edgefed ...` in the checkout. npm
 * answers it by linking this package into its npx cache, which runs the
 * package's prepare step; that rebuilt dist/ with tsc every first time
 * (6-20 s of silence). With dist/ fresh, prepare must leave it alone.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BUILT_CLI, distIsFresh, ROOT } from '../scripts/dist-fresh.mjs';
import { bounded } from './helpers/scope.js';

const run = promisify(execFile);

test('npx edgefed in the checkout, with a fresh dist/ and an empty npx cache, answers without rebuilding dist/', bounded(async (scope) => {
  if (!distIsFresh()) await run('npm', ['run', 'build'], { cwd: ROOT, timeout: 120_000 });
  const before = statSync(BUILT_CLI).mtimeMs;
  const cache = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-npx-cache-'));
  scope.defer(() => fs.rm(cache, { recursive: true, force: true }));
  const out = await run('npx', ['--yes', 'edgefed', '--help'], {
    cwd: ROOT, timeout: 60_000, env: { ...process.env, npm_config_cache: cache, npm_config_update_notifier: 'false' },
  });
  assert.match(out.stdout, /^Usage: edgefed <command>/);
  assert.is(statSync(BUILT_CLI).mtimeMs, before, 'dist/ was not rebuilt');
}, { timeoutMs: 120_000 }));

test.run();
