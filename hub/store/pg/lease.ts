/**
 * The hub lease in PostgreSQL (issue 14): one row, its holder, an expiry on
 * the database's clock (hubs' clocks may disagree, the database's is one),
 * and an epoch raised at every acquisition. The epoch is the fencing token:
 * PgStore writes only while the row still carries its hub's epoch, and holds
 * the row FOR SHARE during the write, so a takeover waits for a write in
 * flight and every later write of the old hub is refused.
 */
import type pg from 'pg';

export const HUB_LEASE = 'hub';

export interface LeaseHolder {
  holder: string;
  epoch: number;
  /** ms until it expires, on the database's clock (negative: expired). */
  expires_in_ms: number;
  info: LeaseInfo;
}

/** What a standby tells a client about the active hub. */
export interface LeaseInfo { api_url?: string; boot_id?: string }

export type Acquired = { acquired: true; epoch: number } | { acquired: false; current: LeaseHolder | undefined };

/**
 * Takes the lease if it is free or expired (a new epoch), or confirms that
 * `holder` already has it under `epoch`... never both hubs: the row is
 * updated under its own lock, and the WHERE clause decides.
 */
export async function acquireLease(db: pg.Pool, holder: string, ttlMs: number, info: LeaseInfo): Promise<Acquired> {
  const { rows } = await db.query<{ epoch: string }>(`
    INSERT INTO edgefed_leases AS l (name, holder, epoch, expires_at, holder_info)
    VALUES ($1, $2, 1, now() + ($3::integer * interval '1 millisecond'), $4::jsonb)
    ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1,
      expires_at = EXCLUDED.expires_at, holder_info = EXCLUDED.holder_info
    WHERE l.expires_at < now()
    RETURNING epoch`, [HUB_LEASE, holder, ttlMs, JSON.stringify(info)]);
  if (rows[0]) return { acquired: true, epoch: Number(rows[0].epoch) };
  return { acquired: false, current: await readLease(db) };
}

/**
 * Extends the lease while `holder` still has it under `epoch` and it has not
 * expired; false otherwise. An expired lease is never renewed: its holder
 * was away longer than the TTL (paused, cut off) and must acquire again,
 * under a new epoch, if nobody else has.
 */
export async function renewLease(db: pg.Pool, holder: string, epoch: number, ttlMs: number, info: LeaseInfo): Promise<boolean> {
  const { rowCount } = await db.query(`
    UPDATE edgefed_leases SET expires_at = now() + ($4::integer * interval '1 millisecond'), holder_info = $5::jsonb
    WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()`, [HUB_LEASE, holder, epoch, ttlMs, JSON.stringify(info)]);
  return rowCount === 1;
}

/** Gives the lease up at a clean stop, so a standby takes over at once instead of after the TTL. */
export async function releaseLease(db: pg.Pool, holder: string, epoch: number): Promise<void> {
  await db.query(`UPDATE edgefed_leases SET expires_at = now() - interval '1 millisecond'
    WHERE name = $1 AND holder = $2 AND epoch = $3`, [HUB_LEASE, holder, epoch]);
}

export async function readLease(db: pg.Pool): Promise<LeaseHolder | undefined> {
  const { rows } = await db.query<{ holder: string; epoch: string; expires_in_ms: number; info: LeaseInfo }>(`
    SELECT holder, epoch, (extract(epoch FROM expires_at - now()) * 1000)::float8 AS expires_in_ms, holder_info AS info
    FROM edgefed_leases WHERE name = $1`, [HUB_LEASE]);
  const r = rows[0];
  return r ? { holder: r.holder, epoch: Number(r.epoch), expires_in_ms: r.expires_in_ms, info: r.info } : undefined;
}

/** The statement a fenced write runs first: the lease row, locked against a takeover until the write commits. */
export const FENCE = 'SELECT epoch FROM edgefed_leases WHERE name = $1 FOR SHARE';
