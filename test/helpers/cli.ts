/**
 * How tests run the `edgefed` CLI in a child process: the built JS in dist/
 * when it is newer than every source file (`npm ci` builds it, so CI always
 * has a fresh one), else the TypeScript through tsx. A stale build is never
 * used. Plain node starts the CLI without transpiling it: with tsx, a fresh
 * clone's empty transpile cache made the first spawns compile the whole CLI
 * again, ~12 s of a cold `npm test`.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SOURCES = ['index.ts', 'lib', 'schemas', 'broker', 'hub', 'server', 'agent', 'auth', 'cli'];
const BUILT = path.join(ROOT, 'dist', 'cli', 'main.js');

function newestMtime(entry: string): number {
  const st = statSync(entry);
  if (!st.isDirectory()) return entry.endsWith('.ts') ? st.mtimeMs : 0;
  return readdirSync(entry).reduce((newest, name) => Math.max(newest, newestMtime(path.join(entry, name))), 0);
}

function builtIsFresh(): boolean {
  let built: number;
  try {
    built = statSync(BUILT).mtimeMs;
  } catch {
    return false;
  }
  return SOURCES.every((s) => newestMtime(path.join(ROOT, s)) <= built);
}

/** The node arguments that run the CLI: `[...CLI_ARGS, 'start', ...]`. */
export const CLI_ARGS: readonly string[] = builtIsFresh() ? [BUILT] : ['--import', 'tsx', path.join(ROOT, 'cli', 'main.ts')];
