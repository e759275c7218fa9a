/**
 * `npm install`'s prepare step: builds dist/ unless it is already fresh.
 * npx runs prepare again when it links this package for `npx edgefed` in its
 * own checkout (npm installs a local bin into its cache); a full tsc there
 * made the README's first `npx edgefed` take 6-20 s. A fresh dist/ now costs
 * that call about 0.7 s.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { distIsFresh, ROOT } from './dist-fresh.mjs';

if (distIsFresh()) {
  process.stdout.write('edgefed: dist/ is up to date; not rebuilding (npm run build forces it)\n');
} else {
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
}
