#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm install` (the prepare script).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write('edgefed: dist/ is missing; run "npm run build" (npm install runs it for you).\n');
    process.exit(1);
  }
  throw err;
});
