/**
 * `--store` (and `EDGEFED_STORE`): which Store a hub opens. Without one, the
 * lowdb files in the data dir, as ever; with a postgres:// URL, PostgreSQL.
 * Anything else is refused: a typo must not quietly become a second set of
 * files.
 */
import { EdgefedError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { isPostgresUrl } from './pg/connection.js';
import { PgStore } from './pg/store.js';
import type { Store } from './types.js';

export function openStore(spec: string, log: Logger): Store {
  if (isPostgresUrl(spec)) {
    return new PgStore({ url: spec, onIdleError: (err) => log.warn({ code: err.code, err: err.detail }, 'store connection dropped; the pool opens a new one') });
  }
  throw new EdgefedError('EDGEFED_ERR_STORE_URL',
    'a store is a postgres:// URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE); leave --store out to keep the files in --data-dir');
}
