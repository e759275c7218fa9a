/**
 * A real PostgreSQL server for the tests, started the way an operator would:
 * `initdb` into a temp dir, `pg_ctl start` on a free loopback port with
 * password (scram) authentication over TCP. As root (CI), the server runs as
 * the `postgres` user, which Debian's package creates. No docker, no fake.
 *
 * `sharedPostgres()` is one server per test process (each test takes its own
 * database from it); `startPostgres()` is a server of the test's own, for
 * tests that stop and start it.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';

const run = promisify(execFile);
export const PG_PASSWORD = 's3cret-pw';

export interface PgServer {
  port: number;
  /** A connection URL to `db` as the superuser, with the password. */
  url(db: string): string;
  /** Creates a fresh database and answers its URL. */
  createDatabase(prefix?: string): Promise<string>;
  /** Stops the server (fast shutdown), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  destroy(): Promise<void>;
}

/** The directory of Debian's PostgreSQL binaries (initdb and pg_ctl are not on PATH there). */
export function pgBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => path.join(base, v, 'bin')).find((dir) => fs.existsSync(path.join(dir, 'initdb')));
  if (found) return found;
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (fs.existsSync(path.join(dir, 'initdb'))) return dir;
  } catch { /* no pg_config either */ }
  throw new Error('PostgreSQL is not installed (apt-get install postgresql-15); .ci/run installs it');
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL tool, as the postgres user when we are root (initdb refuses root). */
async function pgTool(tool: string, args: string[]): Promise<void> {
  const bin = path.join(pgBinDir(), tool);
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  await run(cmd, argv, { timeout: 60_000, env: { ...process.env, LC_ALL: 'C' } });
}


/** `fsync: true` for benchmarks (the durability an operator runs with); tests go without it. */
export async function startPostgres(o: { fsync?: boolean } = {}): Promise<PgServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgefed-pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const pwfile = path.join(dir, 'pw');
  fs.writeFileSync(pwfile, PG_PASSWORD);
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    fs.chownSync(dir, uid, gid);
    fs.chownSync(pwfile, uid, gid);
  }
  await pgTool('initdb', ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=${o.fsync ? 'on' : 'off'} -c max_connections=200`;
  const start = () => pgTool('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  const stop = () => pgTool('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  await start();
  let running = true;
  const url = (db: string) => `postgres://postgres:${PG_PASSWORD}@127.0.0.1:${port}/${db}`;
  let n = 0;
  const server: PgServer = {
    port,
    url,
    async createDatabase(prefix = 't') {
      const name = `${prefix}_${process.pid}_${++n}`;
      const c = new pg.Client({ connectionString: url('postgres') });
      await c.connect();
      try { await c.query(`CREATE DATABASE ${name}`); } finally { await c.end(); }
      return url(name);
    },
    async stop() { if (running) { await stop(); running = false; } },
    async start() { if (!running) { await start(); running = true; } },
    async destroy() {
      await server.stop().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  // A test process that ends without destroy() must not leave a server behind.
  process.once('exit', () => {
    if (!running) return;
    try {
      const bin = path.join(pgBinDir(), 'pg_ctl');
      const argv = ['-D', data, '-m', 'immediate', 'stop'];
      if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', bin, ...argv], { stdio: 'ignore' });
      else execFileSync(bin, argv, { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    } catch { /* best effort at exit */ }
  });
  return server;
}

let shared: Promise<PgServer> | undefined;

/** One server for the whole test process, stopped when the process exits. */
export function sharedPostgres(): Promise<PgServer> {
  shared ??= startPostgres();
  return shared;
}
