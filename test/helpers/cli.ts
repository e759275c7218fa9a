/**
 * How tests run the `edgefed` CLI in a child process: the built JS in dist/
 * when it is newer than every source file (`npm ci` builds it, so CI always
 * has a fresh one), else the TypeScript through tsx. A stale build is never
 * used. Plain node starts the CLI without transpiling it: with tsx, a fresh
 * clone's empty transpile cache made the first spawns compile the whole CLI
 * again, ~12 s of a cold `npm test`.
 */
import path from 'node:path';
import { BUILT_CLI, distIsFresh, ROOT } from '../../scripts/dist-fresh.mjs';

/** The node arguments that run the CLI: `[...CLI_ARGS, 'start', ...]`. */
export const CLI_ARGS: readonly string[] = distIsFresh() ? [BUILT_CLI] : ['--import', 'tsx', path.join(ROOT, 'cli', 'main.ts')];
