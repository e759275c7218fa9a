/**
 * Whether dist/ is newer than every TypeScript source it is built from
 * (tsconfig.build.json's include). Shared by `npm install`'s prepare step,
 * which skips a build that would change nothing, and by the tests, which run
 * the built CLI only when it is fresh.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SOURCES = ['index.ts', 'lib', 'schemas', 'broker', 'hub', 'server', 'agent', 'auth', 'cli'];
export const BUILT_CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

function newestMtime(entry) {
  const st = statSync(entry);
  if (!st.isDirectory()) return entry.endsWith('.ts') ? st.mtimeMs : 0;
  return readdirSync(entry).reduce((newest, name) => Math.max(newest, newestMtime(path.join(entry, name))), 0);
}

/** True when dist/cli/main.js exists and no source is newer (a build would change nothing). */
export function distIsFresh() {
  let built;
  try {
    built = statSync(BUILT_CLI).mtimeMs;
  } catch {
    return false;
  }
  return SOURCES.every((s) => newestMtime(path.join(ROOT, s)) <= built);
}
