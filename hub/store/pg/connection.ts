/**
 * The store's connection URL and what PostgreSQL's failures mean to an
 * operator. The password never leaves this module in a message: everything
 * that names the database names `describeUrl()`, which has none.
 */
import type { PoolConfig } from 'pg';
import { EdgefedError } from '../../../lib/errors.js';

/** True for what `--store` treats as a PostgreSQL URL. */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** `postgres://user@host:port/db`, for logs and errors: never the password or the query. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const user = u.username ? `${decodeURIComponent(u.username)}@` : '';
    return `postgres://${user}${u.host || 'localhost'}${u.pathname || '/'}`;
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

/** The pool settings for a URL; refuses one that cannot be a PostgreSQL URL. */
export function poolConfig(url: string, o: { max?: number; connectTimeoutMs?: number; queryTimeoutMs?: number } = {}): PoolConfig {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EdgefedError('EDGEFED_ERR_STORE_URL', 'the store URL is not a URL; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  }
  if (!isPostgresUrl(url)) throw new EdgefedError('EDGEFED_ERR_STORE_URL', `a store URL starts with postgres://, not ${u.protocol}//`);
  if (u.pathname.length <= 1) throw new EdgefedError('EDGEFED_ERR_STORE_URL', `${describeUrl(url)} names no database; add it: postgres://USER:PASSWORD@HOST:PORT/DATABASE`);
  return {
    connectionString: url,
    max: o.max ?? 4,
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5000,
    // A database that stops answering (a partition, a paused server) must fail a write, not hold the flusher forever.
    query_timeout: o.queryTimeoutMs ?? 15_000,
    keepAlive: true,
    application_name: 'edgefed-hub',
  };
}

interface PgLikeError { code?: string; message?: string; errno?: number }

/** An operator's reading of a failure to reach or use the database; `url` is named, its password never. */
export function storeError(err: unknown, url: string, doing: string): EdgefedError {
  if (err instanceof EdgefedError) return err;
  const e = (err ?? {}) as PgLikeError;
  const where = describeUrl(url);
  const cause = { cause: err };
  switch (e.code) {
    case '28P01': case '28000':
      return new EdgefedError('EDGEFED_ERR_STORE_AUTH', `${where} refused the credentials (${e.message}); check the user and password in --store`, cause);
    case '3D000':
      return new EdgefedError('EDGEFED_ERR_STORE_CONNECT', `${where}: ${e.message}; create it (createdb) or fix the database name in --store`, cause);
    case 'ECONNREFUSED':
      return new EdgefedError('EDGEFED_ERR_STORE_CONNECT', `nothing accepts connections at ${where} (connection refused); is PostgreSQL running there, on that port?`, cause);
    case 'ENOTFOUND': case 'EAI_AGAIN':
      return new EdgefedError('EDGEFED_ERR_STORE_CONNECT', `the host of ${where} is not known (${e.code}); check the host name in --store`, cause);
    case '53100':
      return new EdgefedError('EDGEFED_ERR_STORE_FULL', `${where} is out of disk space (${e.message}) while ${doing}; free space on the database server`, cause);
    case '57P01': case '57P02': case '57P03':
      return new EdgefedError('EDGEFED_ERR_STORE_DOWN', `${where} is shutting down or starting (${e.message}) while ${doing}`, cause);
    case '42501':
      return new EdgefedError('EDGEFED_ERR_STORE_AUTH', `${where}: ${e.message} while ${doing}; the user needs CREATE on the database and its tables`, cause);
    default: {
      const msg = e.message ?? String(err);
      if (/timeout/i.test(msg)) return new EdgefedError('EDGEFED_ERR_STORE_DOWN', `${where} did not answer in time while ${doing} (${msg})`, cause);
      return new EdgefedError('EDGEFED_ERR_STORE_DOWN', `${where} failed while ${doing}: ${e.code ? `${e.code} ` : ''}${scrub(msg, url)}`, cause);
    }
  }
}

/** Belt and braces: a driver message that quotes the URL must not carry its password out. */
function scrub(message: string, url: string): string {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password ? message.split(password).join('***') : message;
  } catch {
    return message;
  }
}
