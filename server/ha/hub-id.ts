/** A hub's default name in the HA lease: stable across restarts, distinct per host and data dir. */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

/** `<hostname>-<6 hex of sha256(absolute data dir)>`, e.g. `gw-berlin-3fa9c2`. */
export function defaultHubId(dataDir: string | undefined): string {
  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40) || 'hub';
  const dir = createHash('sha256').update(path.resolve(dataDir ?? '.')).digest('hex').slice(0, 6);
  return `${host}-${dir}`;
}
