/**
 * The PostgreSQL schema, as numbered migrations applied in order at start,
 * all in one transaction under an advisory lock (two hubs starting at once
 * apply them once). A database migrated by a newer edgefed is refused, never
 * changed: an older hub would not know what its rows mean.
 *
 * Append only: a released migration is never edited; a change is a new one.
 */
import type { PoolClient } from 'pg';
import { EdgefedError } from '../../../lib/errors.js';

export interface Migration { version: number; name: string; sql: string }

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'nodes, work packages, executions, leases',
    sql: `
      CREATE TABLE edgefed_nodes (
        node_id      text PRIMARY KEY,
        -- the hub's NodeRecord as JSON; the columns below are what queries and liveness batches need
        record       jsonb NOT NULL,
        status       text NOT NULL,
        capabilities text[] NOT NULL,
        last_seen    bigint,
        load         double precision,
        running_wpks integer,
        updated_at   bigint NOT NULL
      );
      CREATE INDEX edgefed_nodes_capabilities ON edgefed_nodes USING gin (capabilities);
      CREATE INDEX edgefed_nodes_status ON edgefed_nodes (status);

      CREATE TABLE edgefed_wpks (
        wpk_id     text PRIMARY KEY,
        -- creation order: the hub loads work packages oldest first
        seq        bigserial UNIQUE,
        state      text NOT NULL,
        capability text NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        -- the WpkRecord without its executions (they are rows of their own)
        record     jsonb NOT NULL
      );
      CREATE INDEX edgefed_wpks_state ON edgefed_wpks (state);

      CREATE TABLE edgefed_executions (
        wpk_id     text NOT NULL REFERENCES edgefed_wpks (wpk_id) ON DELETE CASCADE,
        node_id    text NOT NULL,
        attempt    integer NOT NULL,
        -- place in the WPK's list of executions, which only grows
        position   integer NOT NULL,
        state      text NOT NULL,
        updated_at bigint NOT NULL,
        record     jsonb NOT NULL,
        PRIMARY KEY (wpk_id, node_id, attempt)
      );

      -- For active/standby hubs: one row per lease, its holder and a fencing epoch
      -- (raised at every acquisition; the store refuses writes of an older one).
      CREATE TABLE edgefed_leases (
        name        text PRIMARY KEY,
        holder      text NOT NULL,
        epoch       bigint NOT NULL,
        expires_at  timestamptz NOT NULL,
        -- what standbys tell clients about the active hub (its API URL, boot id)
        holder_info jsonb NOT NULL DEFAULT '{}'
      );
    `,
  },
];

/** The newest schema this edgefed knows. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Any constant: the advisory lock that serialises migrations between hubs. */
const MIGRATION_LOCK = 0x6564_6765;

/** Brings the schema up to SCHEMA_VERSION in one transaction; returns the versions it applied. */
export async function migrate(client: PoolClient, edgefedVersion: string): Promise<number[]> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS edgefed_schema (
      version integer PRIMARY KEY, name text NOT NULL, edgefed_version text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number | null; by: string | null }>(
      'SELECT version, edgefed_version AS by FROM edgefed_schema ORDER BY version DESC LIMIT 1');
    const current = rows[0]?.version ?? 0;
    if (current > SCHEMA_VERSION) throw tooNew(current, rows[0]?.by ?? 'unknown', edgefedVersion);
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO edgefed_schema (version, name, edgefed_version) VALUES ($1, $2, $3)', [m.version, m.name, edgefedVersion]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function tooNew(current: number, by: string, mine: string): EdgefedError {
  return new EdgefedError('EDGEFED_ERR_STORE_VERSION',
    `the database has edgefed schema version ${current} (written by edgefed ${by}), newer than this edgefed ${mine} knows (${SCHEMA_VERSION}); ` +
    'run the newer edgefed, or point --store at another database. Nothing was changed.');
}
