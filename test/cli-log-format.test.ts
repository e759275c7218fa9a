/**
 * Issue 12 §5: what a person reads. `--log-format pretty` gives one readable
 * line per event (time, level, component, message, key fields, an `err` on
 * the same line); JSON lines stay the default when the output is not a
 * terminal (as in these child processes); a bad value is a one-line usage
 * error.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI_ARGS } from './helpers/cli.js';
import { bounded, type Scope } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';

interface Run { out: string; err: string; code: number | null }

/** Runs the CLI until `until(run)` holds (then SIGTERM) or it exits. */
async function cli(scope: Scope, args: string[], until: (r: Run) => boolean, command: string[] = [process.execPath, ...CLI_ARGS, ...args], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  scope.defer(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const run: Run = { out: '', err: '', code: null };
  child.stdout.on('data', (d: Buffer) => { run.out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { run.err += d.toString(); });
  const closed = new Promise<void>((resolve) => child.once('close', (code) => { run.code = code; resolve(); }));
  await waitFor(() => until(run) || run.code !== null, { timeoutMs: 15_000, intervalMs: 20, label: command.join(' ') });
  if (run.code === null) child.kill('SIGTERM');
  await withTimeout(closed, 5000, 'exit');
  return run;
}

const LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] (DEBUG|INFO|WARN|ERROR): /;
const nobody = ['--broker', 'mqtt://127.0.0.1:9', '--id', 'edge-log', '--capabilities', 'monitoring'];

test('agent --log-format pretty: one readable line per event, the component first, err on the line', bounded(async (scope) => {
  const run = await cli(scope, ['agent', ...nobody, '--log-format', 'pretty'], (r) => /broker connection error/.test(r.err));
  const lines = run.err.trim().split('\n');
  assert.ok(lines.every((l) => LINE.test(l)), run.err);
  assert.match(run.err, /INFO: agent: agent started \{"node_id":"edge-log",/);
  assert.match(run.err, /WARN: agent: broker connection error \{.*"err":"connect ECONNREFUSED 127\.0\.0\.1:9"/);
}, { timeoutMs: 20_000 }));

test('agent without --log-format on a terminal (util-linux script gives it one): pretty, in colour', bounded(async (scope) => {
  const quoted = [process.execPath, ...CLI_ARGS, 'agent', ...nobody].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  // CI sets NO_COLOR (which the pretty logs honour); a person's terminal does not.
  const { NO_COLOR: _n, FORCE_COLOR: _f, ...env } = process.env;
  const run = await cli(scope, [], () => false, ['script', '-qec', `timeout -s TERM 3 ${quoted}`, '/dev/null'], env);
  const text = run.out.replace(/\r/g, '');
  assert.match(text, /\x1b\[\d+m/, 'coloured');
  const plain = text.replace(/\x1b\[\d+m/g, '');
  assert.match(plain, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: agent: agent started \{/m);
  assert.not.match(plain, /^\{/m, 'no JSON line');
  const bare = await cli(scope, [], () => false, ['script', '-qec', `timeout -s TERM 3 ${quoted}`, '/dev/null'], { ...env, NO_COLOR: '1' });
  assert.not.match(bare.out, /\x1b\[\d+m/, 'NO_COLOR: no colour');
}, { timeoutMs: 20_000 }));

test('agent without --log-format, output not a terminal: JSON lines as before', bounded(async (scope) => {
  const run = await cli(scope, ['agent', ...nobody], (r) => /broker connection error/.test(r.err));
  const lines = run.err.trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
  assert.ok(lines.some((l) => l.msg === 'agent started'));
}, { timeoutMs: 20_000 }));

test('start --log-format pretty: the ready line reads as words; a bad format is a usage error', bounded(async (scope) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-logfmt-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const run = await cli(scope, ['start', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dir, '--log-format', 'pretty'], (r) => /edgefed ready/.test(r.out));
  assert.match(run.out, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: edgefed ready \{"mqtt_url":"mqtt:\/\/127\.0\.0\.1:\d+"/m);
  assert.match(run.out, /INFO: hub: registry loaded/);
  assert.not.match(run.out, /^\{/m, 'no JSON line');
  const bad = await cli(scope, ['simulate', '--log-format', 'yaml', '--nodes', '1'], () => false);
  assert.equal([bad.code, bad.err.trim()], [2, 'edgefed simulate: --log-format must be json or pretty, got "yaml". Run "edgefed simulate --help".']);
}, { timeoutMs: 30_000 }));

test.run();
