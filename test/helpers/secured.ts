/**
 * A federation with `--auth jwt`: the hub's signing key in a temp data dir
 * (removed with the scope), and tokens minted with that key, as
 * `edgefed token issue --data-dir` would.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { issueToken, loadOrCreateSigningKey, type IssueOptions } from '../../auth/index.js';
import type { Federation, FederationOptions } from '../../server/federation.js';
import type { JwtAuthOptions } from '../../server/federation-auth.js';
import { federation } from './federation.js';
import type { Scope } from './scope.js';

export type TokenRequest = Omit<IssueOptions, 'ttlSeconds'> & { ttlSeconds?: number };

export interface Secured {
  fed: Federation;
  dir: string;
  /** A token from the hub's own key (10 minutes unless `ttlSeconds` says otherwise). */
  token(o: TokenRequest): Promise<string>;
}

export async function securedFederation(scope: Scope, auth: JwtAuthOptions = {}, extra: Partial<FederationOptions> = {}): Promise<Secured> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-secured-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const fed = await federation({ ...extra, dataDir: dir, auth });
  scope.defer(() => fed.stop());
  const key = await loadOrCreateSigningKey(dir);
  return { fed, dir, token: (o) => issueToken({ ttlSeconds: 600, ...o }, key) };
}
