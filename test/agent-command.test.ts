/**
 * `edgefed agent`: flag errors in-process, a real run in a child process
 * (flags over environment, JSON logs on stderr, clean stop on SIGTERM), and
 * user actions from an `--actions` module.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aedes } from 'aedes';
import { connect, type MqttClient } from 'mqtt';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ActionModuleError, loadActionModule } from '../agent/index.js';
import { runAgentCommand } from '../cli/agent-command.js';
import { topics } from '../lib/topics.js';
import { Scope } from './helpers/scope.js';
import { waitFor, withTimeout } from './helpers/time.js';

const t = topics();
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Runs the command with stdout/stderr captured instead of printed. */
async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const realOut = process.stdout.write;
  const realErr = process.stderr.write;
  process.stdout.write = ((chunk: string) => { out += chunk; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => { err += chunk; return true; }) as typeof process.stderr.write;
  try {
    return { code: await runAgentCommand(argv, env), out, err };
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
  }
}

const flags = suite('edgefed agent flags');

flags('--help prints every flag with its environment variable and exits 0', async () => {
  const { code, out } = await run(['--help']);
  assert.equal(code, 0);
  for (const name of ['--id', '--capabilities', '--broker', '--label', '--keepalive', '--heartbeat-interval', '--endpoint', '--log-level', 'EDGEFED_HEARTBEAT_INTERVAL',
    '--actions', '--spool-dir', '--spool-max', '--replay-final', 'EDGEFED_REPLAY_FINAL', '~/.edgefed/spool/NODE_ID']) {
    assert.ok(out.includes(name), name);
  }
});

flags('bad flags exit 2 with the reason and a pointer to --help', async () => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['--bogus'], {}, /^edgefed agent: unknown option --bogus; see edgefed agent --help$/m],
    [['--idd', 'x'], {}, /^edgefed agent: unknown option --idd \(did you mean --id\?\); see edgefed agent --help$/m],
    [['--id', 'n1', '--capabilities', 'a', '--broker'], {}, /^edgefed agent: --broker needs a value; see edgefed agent --help$/m],
    [['--capabilities', 'a'], {}, /--id is required \(or set EDGEFED_ID\)/],
    [['--id', 'n1'], {}, /--capabilities is required/],
    [['--id', 'n1', '--capabilities', 'a', 'extra'], {}, /unexpected argument "extra"/],
    [['--id', 'n1', '--capabilities', 'a', '--keepalive', 'soon'], {}, /--keepalive must be a whole number/],
    [['--id', 'n1', '--capabilities', 'a', '--heartbeat-interval', '5 parsecs'], {}, /--heartbeat-interval must be a duration/],
    [['--id', 'n1', '--capabilities', 'a', '--label', 'berlin'], {}, /--label takes name=value/],
    [['--id', 'n1', '--capabilities', 'a', '--log-level', 'loud'], {}, /--log-level must be one of/],
    [['--id', 'n/1'], { EDGEFED_CAPABILITIES: 'a,a' }, /EDGEFED_ERR_AGENT_CONFIG: --id "n\/1" is not a valid id.*--capabilities must be distinct/],
    [['--id', 'n1', '--capabilities', 'a', '--broker', 'http://hub'], {}, /--broker "http:\/\/hub" must use one of/],
    [['--id', 'n1', '--capabilities', 'a', '--heartbeat-interval', '10ms'], {}, /--heartbeat-interval \(ms\) must be an integer in 100\.\./],
  ];
  for (const [argv, env, pattern] of cases) {
    const { code, err } = await run(argv, env);
    assert.equal(code, 2, argv.join(' '));
    assert.match(err, pattern);
    assert.match(err, /(Run "edgefed agent --help"|see edgefed agent --help)/);
    assert.not.match(err, /positional argument/, 'never node\'s parseArgs advice');
  }
});

/**
 * One agent process for the whole suite: spawning one costs a second or more
 * (tsx, module loading), so the tests below share it, in order: it starts
 * with flags, variables and an actions module, runs work, stops on SIGTERM;
 * a resolve hook in it records every module it loaded meanwhile.
 */
interface AgentRun {
  scope: Scope;
  /** Everything below the topic root the observer saw, in order. */
  seen: Array<{ topic: string; body: Record<string, unknown> }>;
  observer: MqttClient;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** The child's stderr so far: JSON log lines, and the hook's `LOADED <url>` lines. */
  stderr(): string;
}

const process_ = suite<{ run?: AgentRun }>('edgefed agent process', {});

async function startBroker(scope: Scope): Promise<number> {
  const broker = await Aedes.createBroker();
  const server = net.createServer((socket) => broker.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scope.defer(async () => {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

const MODULE = `export async function double(params, ctx) { ctx.progress(1); return { doubled: params.n * 2, node: ctx.nodeId }; }
export default { 'collect-metrics': async (params) => ({ window: params.window, cpu: 0.5 }) };
`;

process_.before(async (ctx) => {
  const scope = new Scope();
  try {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'edgefed-agent-run-'));
    scope.defer(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'my-actions.mjs');
    await writeFile(file, MODULE);
    const port = await startBroker(scope);
    const observer = connect(`mqtt://127.0.0.1:${port}`, { clientId: 'observer' });
    scope.defer(() => observer.endAsync(true));
    const seen: AgentRun['seen'] = [];
    observer.on('message', (topic, payload) => seen.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }));
    await withTimeout(observer.subscribeAsync(t.everything(), { qos: 1 }), 3000, 'observer subscribed');

    // A resolve hook records every module the command pulls in, transitively, for as long as it runs.
    const hook = `export async function resolve(s, c, next) { const r = await next(s, c); process.stderr.write('LOADED ' + r.url + '\\n'); return r; }`;
    const script = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
const m = await import(${JSON.stringify(new URL('../cli/agent-command.ts', import.meta.url).href)});
process.exitCode = await m.runAgentCommand(process.argv.slice(1), process.env);`;
    const args = ['--id', 'cli-node', '--capabilities', 'monitoring,basic-actions', '--broker', `mqtt://127.0.0.1:${port}`,
      '--label', 'site=berlin', '--heartbeat-interval', '200ms', '--log-level', 'debug', '--actions', file, '--spool-dir', path.join(dir, 'spool')];
    const env = { ...process.env, EDGEFED_ID: 'env-node', EDGEFED_LABEL: 'rack=3', EDGEFED_ENDPOINT: 'http://cli-node:8040', EDGEFED_CONCURRENCY: '7' };
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    scope.defer(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    ctx.run = { scope, seen, observer, child, exited, stderr: () => stderr };
  } catch (err) {
    await scope.close().catch(() => undefined);
    throw err;
  }
});

process_.after(async (ctx) => {
  await ctx.run?.scope.close();
  ctx.run = undefined;
});

const runOf = (ctx: { run?: AgentRun }): AgentRun => {
  assert.ok(ctx.run, 'the agent process started');
  return ctx.run!;
};

process_('flags win over EDGEFED_* variables; the registration and heartbeats go out', (ctx) => withTimeout((async () => {
  const { seen } = runOf(ctx);
  const reg = await waitFor(() => seen.find((m) => m.topic === t.registration('cli-node'))?.body, { label: 'registration', timeoutMs: 6000 });
  assert.equal(reg.labels, { site: 'berlin' }, 'the flag wins over EDGEFED_LABEL');
  assert.equal(reg.endpoint, 'http://cli-node:8040', 'EDGEFED_ENDPOINT fills a missing flag');
  assert.equal(reg.max_concurrency, 7);
  assert.equal(reg.heartbeat_interval_ms, 200);
  assert.equal(seen.some((m) => m.topic.includes('env-node')), false);
  await waitFor(() => seen.some((m) => m.topic === t.heartbeat('cli-node')), { label: 'heartbeat' });
})(), 8000, 'flags'));

process_('the CLI agent runs the --actions module\'s actions for triggers from the hub', (ctx) => withTimeout((async () => {
  const { seen, observer } = runOf(ctx);
  // The retained online status says the agent is subscribed to its triggers (subscribe goes before the birth).
  await waitFor(() => seen.some((m) => m.topic === t.status('cli-node') && m.body.state === 'online'), { label: 'agent online', timeoutMs: 6000 });
  const trigger = (wpkId: string, action: string, params: Record<string, unknown>) => observer.publishAsync(t.trigger('monitoring'),
    JSON.stringify({ wpk_id: wpkId, capability: 'monitoring', action, params, mode: 'all', attempt: 1, created_at: Date.now(), deadline: Date.now() + 60_000 }), { qos: 1 });
  await trigger('wpk_a', 'collect-metrics', { window: '1m' });
  await trigger('wpk_b', 'double', { n: 21 });
  const result = (wpkId: string) => waitFor(() => seen.find((m) => m.body.wpk_id === wpkId && m.body.state === 'succeeded')?.body.result, { label: wpkId });
  assert.equal(await result('wpk_a'), { window: '1m', cpu: 0.5 });
  assert.equal(await result('wpk_b'), { doubled: 42, node: 'cli-node' });
})(), 8000, 'actions'));

process_('stops on SIGTERM with offline/shutdown, JSON log lines and exit 0', (ctx) => withTimeout((async () => {
  const { seen, child, exited, stderr } = runOf(ctx);
  const reg = seen.find((m) => m.topic === t.registration('cli-node'))?.body;
  assert.ok(reg, 'registered');
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr());
  // The agent exits once the broker has its goodbye; the observer hears it a moment later.
  const bye = await waitFor(() => seen.filter((m) => m.topic === t.status('cli-node')).map((m) => m.body).find((b) => b.state === 'offline'), { label: 'goodbye status' });
  assert.equal({ state: bye?.state, reason: bye?.reason, boot_id: bye?.boot_id }, { state: 'offline', reason: 'shutdown', boot_id: reg!.boot_id });
  const lines = stderr().trim().split('\n').filter((line) => !line.startsWith('LOADED ')).map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.ok(lines.some((l) => l.msg === 'connected to broker'), 'JSON lines on stderr');
  assert.ok(lines.some((l) => l.msg === 'agent stopped'));
})(), 8000, 'SIGTERM'));

process_('loaded no broker, hub, schema, ajv, pino or lowdb code in its whole run (the agent memory budget)', (ctx) => withTimeout((async () => {
  const { child, stderr } = runOf(ctx);
  assert.ok(child.exitCode !== null, 'the run is over');
  const loaded = stderr().split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7));
  assert.ok(loaded.some((u) => u.includes('/agent/agent.ts')), 'the hook saw the agent');
  const forbidden = loaded.filter((u) => /node_modules\/(aedes|ajv|ajv-formats|pino|lowdb|nanoid)\/|\/(hub|broker|schemas)\//.test(u));
  assert.equal(forbidden, []);
})(), 2000, 'modules'));

const actions = suite<{ dir: string }>('edgefed agent --actions', { dir: '' });
actions.before.each(async (ctx) => { ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'edgefed-actions-')); });
actions.after.each(async (ctx) => { await rm(ctx.dir, { recursive: true, force: true }); });

actions('a module of named exports and a default object, resolved relative to the working directory', async (ctx) => {
  await writeFile(path.join(ctx.dir, 'my-actions.mjs'), MODULE);
  const loaded = await loadActionModule('./my-actions.mjs', ctx.dir);
  assert.equal(Object.keys(loaded).sort(), ['collect-metrics', 'double']);
  assert.equal(await loaded['collect-metrics']!({ window: '5m' }, undefined as never), { window: '5m', cpu: 0.5 });
  // CommonJS works too: module.exports is the default object.
  await writeFile(path.join(ctx.dir, 'cjs-actions.cjs'), 'module.exports = { ping: async () => "pong" };\n');
  assert.equal(Object.keys(await loadActionModule(path.join(ctx.dir, 'cjs-actions.cjs'))), ['ping']);
});

actions('invalid modules exit 2 naming the file and every problem', async (ctx) => {
  const write = async (name: string, text: string) => {
    await writeFile(path.join(ctx.dir, name), text);
    return path.join(ctx.dir, name);
  };
  const cases: Array<[string, RegExp]> = [
    [path.join(ctx.dir, 'missing.mjs'), /missing\.mjs: cannot be loaded/],
    [await write('syntax.mjs', 'export const = ;'), /syntax\.mjs: cannot be loaded/],
    [await write('values.mjs', 'export const limit = 3;\nexport default { "bad name": () => 1, "ok-name": 42 };'),
      /action name "bad name" is not an id.*"ok-name" is not a function.*"limit" is not a function/],
    [await write('fn-default.mjs', 'export default async function () {}'), /default export must be an object of actions/],
    [await write('empty.mjs', 'export {};'), /exports no actions/],
    [await write('twice.mjs', 'export const a = () => 1;\nexport default { a: () => 2 };'), /"a" is exported twice/],
  ];
  for (const [file, pattern] of cases) {
    const { code, err } = await run(['--id', 'n1', '--capabilities', 'a', '--actions', file]);
    assert.equal(code, 2, file);
    assert.match(err, /^edgefed agent: --actions /);
    assert.match(err, pattern);
    assert.match(err, /(Run "edgefed agent --help"|see edgefed agent --help)/);
    assert.not.match(err, /positional argument/, 'never node\'s parseArgs advice');
  }
  try {
    await loadActionModule(path.join(ctx.dir, 'empty.mjs'));
    assert.unreachable('empty module accepted');
  } catch (err) {
    assert.instance(err, ActionModuleError);
    assert.equal((err as ActionModuleError).code, 'EDGEFED_ERR_ACTIONS');
  }
  const { code, err } = await run(['--id', 'n1', '--capabilities', 'a', '--spool-max', '0']);
  assert.equal(code, 2);
  assert.match(err, /--spool-max must be a whole number from 1/);
  const replay = await run(['--id', 'n1', '--capabilities', 'a', '--replay-final', '2d']);
  assert.equal(replay.code, 2);
  assert.match(replay.err, /--replay-final \(ms\) must be/);
});

flags.run();
process_.run();
actions.run();
