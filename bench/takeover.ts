/**
 * takeover (issue 14): two `edgefed start --store --broker-url` processes on
 * mosquitto and PostgreSQL (fsync on), 20 agents in a process of their own
 * that write down every run. Each round creates WPKs on the active hub,
 * kills it with -9 at a random moment (0-2 s after the first create: some
 * kills land while work is being dispatched), times until the standby says
 * `active`, restarts the killed one as the new standby, and waits for every
 * WPK to end. Over all rounds: takeover median and worst, attempts that
 * ran twice, and WPKs lost (not succeeded within 60 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/ports.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { median } from './stats.js';

const CLI = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const FLEET = fileURLToPath(new URL('../test/interop/fleet/ha-agents.ts', import.meta.url));

interface HubProc { id: string; child: ChildProcess; http: string }

async function startHub(id: string, args: string[]): Promise<HubProc> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '--http-port', '0', '--hub-id', id, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  for await (const line of createInterface({ input: child.stdout! })) {
    if (!line.includes('"edgefed ready"')) continue;
    const http = (JSON.parse(line) as { http_url: string }).http_url;
    child.stdout!.resume();
    return { id, child, http };
  }
  throw new Error(`hub ${id} exited before ready`);
}

const role = async (h: HubProc): Promise<string | undefined> => {
  try { return ((await (await fetch(`${h.http}/health`)).json()) as { ha?: { role: string } }).ha?.role; } catch { return undefined; }
};

async function until(f: () => Promise<boolean>, timeoutMs: number, step = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) { if (await f()) return true; await new Promise((r) => setTimeout(r, step)); }
  return false;
}

export async function takeover(o: { rounds: number; wpks: number; ttlMs: number }): Promise<Record<string, unknown>> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-takeover-'));
  const pgServer = await startPostgres({ fsync: true });
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  await fs.writeFile(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 20000\n`);
  const mosquitto = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const broker = `mqtt://127.0.0.1:${port}`;
  const store = await pgServer.createDatabase('takeover');
  const runs = path.join(dir, 'runs.txt');
  await fs.writeFile(runs, '');
  const args = (id: string) => ['--broker-url', broker, '--store', store, '--data-dir', path.join(dir, id), '--lease-ttl', `${o.ttlMs}ms`];
  let active = await startHub('hub-a', args('hub-a'));
  let standby = await startHub('hub-b', args('hub-b'));
  const fleet = spawn(process.execPath, ['--import', 'tsx', FLEET], { env: { ...process.env, BROKER: broker, AGENTS: '20', RUNS_FILE: runs }, stdio: 'ignore' });
  const takeovers: number[] = [];
  const all: string[] = [];
  let lost = 0;
  try {
    await until(async () => ((await (await fetch(`${active.http}/federation/nodes?status=active`)).json()) as { nodes: unknown[] }).nodes.length === 20, 30_000, 200);
    for (let round = 0; round < o.rounds; round += 1) {
      const killAt = Date.now() + Math.random() * 2000;
      const ids: string[] = [];
      while (ids.length < o.wpks && Date.now() < killAt + 5000) {
        const res = await fetch(`${active.http}/federation/wpk`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ capability: 'work', action: 'work', params: { ms: 2000 }, timeout_ms: 60_000 }) });
        if (res.status === 201) ids.push(((await res.json()) as { wpk_id: string }).wpk_id);
        if (Date.now() >= killAt) break;
      }
      all.push(...ids);
      const t0 = Date.now();
      active.child.kill('SIGKILL');
      await once(active.child, 'exit');
      const ok = await until(async () => (await role(standby)) === 'active', o.ttlMs + 15_000);
      takeovers.push(ok ? Date.now() - t0 : NaN);
      const killed = active;
      active = standby;
      standby = await startHub(killed.id, args(killed.id));
      const done = await until(async () => {
        for (const id of ids) {
          const w = (await (await fetch(`${active.http}/federation/wpk/${id}`)).json()) as { state: string };
          if (!['succeeded', 'failed', 'timed_out', 'expired', 'canceled'].includes(w.state)) return false;
        }
        return true;
      }, 60_000, 250);
      for (const id of ids) {
        const w = (await (await fetch(`${active.http}/federation/wpk/${id}`)).json()) as { state?: string };
        if (!done || w.state !== 'succeeded') lost += 1;
      }
    }
    const perWpk = new Map<string, number>();
    for (const l of (await fs.readFile(runs, 'utf8')).trim().split('\n')) if (l) perWpk.set(l.split(' ')[0]!, (perWpk.get(l.split(' ')[0]!) ?? 0) + 1);
    const twice = [...perWpk.values()].filter((n) => n > 1).length;
    return {
      rounds: o.rounds, wpks: all.length, ttl_ms: o.ttlMs,
      takeover_median_ms: Math.round(median(takeovers)), takeover_worst_ms: Math.round(Math.max(...takeovers)),
      takeover_ms: takeovers, runs_twice: twice, never_ran: all.filter((id) => !perWpk.has(id)).length, wpks_lost: lost,
      target_ms: o.ttlMs + 5000,
    };
  } finally {
    fleet.kill('SIGKILL');
    active.child.kill('SIGKILL');
    standby.child.kill('SIGKILL');
    mosquitto.kill('SIGTERM');
    await pgServer.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
