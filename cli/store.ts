/**
 * `edgefed store migrate --from DIR --to postgres://...`: moves a deployment
 * from its files to PostgreSQL. It takes the data dir's lock, so it refuses
 * while a hub runs on it (a running hub would keep changing what is copied).
 */
import fs from 'node:fs';
import path from 'node:path';
import { lockDataDir } from '../hub/lock.js';
import { copyStore, type CopyReport } from '../hub/store/copy.js';
import { LowdbStore } from '../hub/store/lowdb.js';
import { describeUrl, isPostgresUrl } from '../hub/store/pg/connection.js';
import { PgStore } from '../hub/store/pg/store.js';
import { registryPath } from '../hub/store/registry-file.js';
import { CliError, commandFlags, str, type FlagSpecs } from './args.js';

const MIGRATE_SPECS: FlagSpecs = {
  from: { type: 'string', value: 'DIR', help: 'Data dir of the hub to copy (its registry.json and wpks.json)' },
  to: { type: 'string', value: 'URL', help: 'PostgreSQL to copy into: postgres://USER:PASSWORD@HOST:PORT/DB (tables are created)' },
  json: { type: 'boolean', help: 'Print the counts as JSON' },
};

const USAGE = 'Usage: edgefed store migrate --from DIR --to postgres://USER:PASSWORD@HOST:PORT/DB [--json]\n';

export async function runStore(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(`${USAGE}\nCopies a hub's files into PostgreSQL (idempotent: running it again changes nothing).\nStop the hub first; then start it with --store URL.\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'migrate') throw new CliError(`edgefed store: unknown subcommand "${sub}"; see edgefed store --help`);
  const parsed = commandFlags('store migrate', rest, MIGRATE_SPECS, env, { usage: 'edgefed store migrate --from DIR --to URL [--json]', summary: 'Copies a hub\'s files (registry and work packages) into PostgreSQL.' });
  if (!parsed) return 0;
  const from = str(parsed.flags, 'from');
  const to = str(parsed.flags, 'to');
  if (!from || !to) throw new CliError(`edgefed store migrate: give --from DIR and --to postgres://...\n${USAGE}`);
  if (!isPostgresUrl(to)) throw new CliError('edgefed store migrate: --to takes a postgres:// URL');
  const dir = path.resolve(from);
  if (!fs.existsSync(registryPath(dir))) throw new CliError(`edgefed store migrate: ${dir} holds no registry.json; --from is the hub's --data-dir`);
  const lock = await lockDataDir(dir).catch((err: Error) => { throw new CliError(`edgefed store migrate: ${err.message}`); });
  const target = new PgStore({ url: to });
  try {
    const report = await copyStore(new LowdbStore({ dataDir: dir }), target);
    process.stdout.write(parsed.flags.json ? `${JSON.stringify({ from: dir, to: describeUrl(to), ...report })}\n` : summary(dir, describeUrl(to), report));
    return 0;
  } finally {
    await target.close();
    await lock.release();
  }
}

function summary(from: string, to: string, r: CopyReport): string {
  const kept = r.nodes.kept_in_target + r.wpks.kept_in_target;
  return [
    `copied ${from} -> ${to}`,
    `  nodes          ${r.nodes.copied} (${r.nodes.new} new, ${r.nodes.replaced} already there, replaced)`,
    `  work packages  ${r.wpks.copied} (${r.wpks.new} new, ${r.wpks.replaced} already there, replaced), ${r.wpks.executions} executions`,
    ...(kept > 0 ? [`  kept: ${r.nodes.kept_in_target} nodes and ${r.wpks.kept_in_target} work packages the database had and ${from} does not`] : []),
    `next: edgefed start --store '${to.replace(/@/, ':PASSWORD@')}' --data-dir ${from}`,
    '',
  ].join('\n');
}
