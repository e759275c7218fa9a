/**
 * `edgefed simulate --nodes N`: N real agents (each its own MQTT connection,
 * registration, will and heartbeats) in one process, for development and load.
 * Connections are opened at a bounded rate so a broker sees a ramp, not a wall.
 */
import { startAgent, type Agent } from '../agent/index.js';
import { jsonLogger, type Logger } from '../lib/log.js';
import { parseDuration } from '../lib/duration.js';
import { DEFAULT_TOPIC_ROOT } from '../lib/topics.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CliError, helpText, int, labels, list, parseFlags, str, type Flags, type FlagSpecs } from './args.js';
import { HUB_FLAGS, hubOf, type HubTarget } from './hub-client.js';
import { cleanupReport, removeSimulated } from './simulate-cleanup.js';
import { cliLogger, LOG_FORMAT_FLAG, logFormat } from './logger.js';

const SPECS: FlagSpecs = {
  nodes: { type: 'string', value: 'N', help: 'How many simulated agents', default: '10' },
  broker: { type: 'string', value: 'URL', help: 'Broker to connect to', default: 'mqtt://127.0.0.1:1883' },
  prefix: { type: 'string', value: 'P', help: 'Node ids are <prefix>-<n>', default: 'sim' },
  capabilities: { type: 'string', value: 'A,B', help: 'Capabilities of every simulated node', default: 'monitoring,basic-actions' },
  label: { type: 'string', multiple: true, value: 'K=V', help: 'Label of every simulated node (repeatable)' },
  'heartbeat-interval': { type: 'string', value: 'DUR', help: 'Heartbeat period, e.g. 5s', default: '5s' },
  'topic-root': { type: 'string', value: 'ROOT', help: 'Topic root shared with the hub', default: DEFAULT_TOPIC_ROOT },
  keepalive: { type: 'string', value: 'SECONDS', help: 'MQTT keepalive in seconds', default: '30' },
  rate: { type: 'string', value: 'N', help: 'Connections opened per second', default: '500' },
  duration: { type: 'string', value: 'DUR', help: 'Stop after this long (default: run until Ctrl-C)' },
  auth: { type: 'string', value: 'MODE', help: 'jwt: give each agent its own token, signed with the hub\'s key in --data-dir (a hub with --auth jwt); auto: do so when that key exists; none', default: 'auto' },
  'data-dir': { type: 'string', value: 'DIR', help: 'With --auth jwt: the hub\'s data dir (its signing key)', default: './data' },
  'log-format': LOG_FORMAT_FLAG,
  keep: { type: 'boolean', help: 'Leave the simulated nodes in the hub\'s registry when stopping (default: remove them through --hub)' },
  ...HUB_FLAGS,
};

export interface Fleet { agents: Agent[]; connected(): number; stop(): Promise<void> }

export interface FleetOptions {
  count: number;
  prefix: string;
  brokerUrl: string;
  capabilities: string[];
  labels: Record<string, string>;
  heartbeatIntervalMs: number;
  keepaliveS: number;
  ratePerSecond: number;
  topicRoot?: string;
  /** With a broker that checks JWTs: each agent's token (the node id is its username). */
  tokenFor?: (nodeId: string) => Promise<string>;
  onProgress?: (connected: number, started: number) => void;
  /** Where the agents log (errors only; default JSON lines on stderr). */
  logger?: Logger;
}

/** Starts the fleet at `ratePerSecond`; resolves once every agent is started (not necessarily connected). */
export async function startFleet(o: FleetOptions): Promise<Fleet> {
  const agents: Agent[] = [];
  let connected = 0;
  const log = o.logger ?? jsonLogger('error');
  const batch = Math.max(1, Math.ceil(o.ratePerSecond / 20)); // 20 batches a second
  for (let i = 0; i < o.count; i += batch) {
    const started = Date.now();
    const group = await Promise.all(Array.from({ length: Math.min(batch, o.count - i) }, async (_, k) => startAgent({
      nodeId: `${o.prefix}-${i + k}`,
      ...(o.tokenFor ? { username: `${o.prefix}-${i + k}`, password: await o.tokenFor(`${o.prefix}-${i + k}`) } : {}),
      capabilities: o.capabilities,
      brokerUrl: o.brokerUrl,
      labels: o.labels,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      ...(o.topicRoot ? { topicRoot: o.topicRoot } : {}),
      keepaliveS: o.keepaliveS,
      logger: log,
    })));
    for (const a of group) {
      a.on('connect', () => { connected += 1; o.onProgress?.(connected, agents.length); });
      a.on('disconnect', () => { connected -= 1; o.onProgress?.(connected, agents.length); });
      agents.push(a);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 50 - (Date.now() - started))));
  }
  return {
    agents,
    connected: () => connected,
    stop: async () => { await Promise.all(agents.map((a) => a.stop())); },
  };
}

/**
 * `--auth jwt`: tokens for the simulated nodes, signed with the hub's own key
 * (so this runs beside the hub, with access to its data dir). Loaded only
 * then: jose stays out of a plain `simulate`.
 */
async function simulatedTokens(flags: Flags): Promise<Pick<FleetOptions, 'tokenFor'> & { operatorToken?: () => Promise<string> }> {
  const mode = str(flags, 'auth') ?? 'auto';
  if (mode !== 'none' && mode !== 'jwt' && mode !== 'auto') throw new CliError(`edgefed simulate: --auth must be auto, jwt or none, got "${mode}"`);
  const dataDir = path.resolve(str(flags, 'data-dir') ?? './data');
  // auto: a hub started here with --auth jwt has left its key in the data dir (auth/keys.ts: keys/signing-key.pem;
  // named here so that a plain simulate does not load jose).
  if (mode === 'none' || (mode === 'auto' && !existsSync(path.join(dataDir, 'keys', 'signing-key.pem')))) return {};
  const { issueToken, loadOrCreateSigningKey } = await import('../auth/index.js');
  const key = await loadOrCreateSigningKey(dataDir);
  if (key.created) process.stderr.write(`simulate: no signing key in ${dataDir} yet, made one: the hub accepts these tokens only if it runs with --data-dir ${dataDir}\n`);
  const caps = list(flags, 'capabilities');
  return {
    tokenFor: (nodeId) => issueToken({ role: 'agent', subject: nodeId, caps, ttlSeconds: 7 * 24 * 3600 }, key),
    // Removing the nodes when it stops is an operator's write (wpk:write), as `edgefed nodes rm`.
    operatorToken: () => issueToken({ role: 'operator', scopes: ['wpk:write'], ttlSeconds: 600 }, key),
  };
}

export async function runSimulate(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { flags } = parseFlags('simulate', argv, SPECS, env);
  if (flags.help) {
    process.stdout.write(helpText('edgefed simulate --nodes N [options]', 'Runs N simulated agents in this process against a broker.', SPECS));
    return 0;
  }
  const count = int(flags, 'nodes', { min: 1, max: 100_000 }) ?? 10;
  const duration = str(flags, 'duration');
  const stopAfter = duration ? parseDuration(duration) : undefined; // parsed before any agent starts
  let lastDraw = 0;
  let stopping = false;
  const progress = (connected: number, started: number) => {
    if (stopping) return; // the agents' goodbyes would redraw the line over the stop messages
    const now = Date.now();
    if (now - lastDraw < 100 && connected !== count) return;
    lastDraw = now;
    process.stderr.write(`\rsimulate: ${connected}/${count} connected (${started} started)   `);
  };
  let fleet: Fleet;
  const prefix = str(flags, 'prefix') ?? 'sim';
  const tokens = await simulatedTokens(flags);
  // Checked before any agent starts; the agents log their errors only.
  const logger = logFormat(flags, 'simulate', 2) === 'pretty' ? await cliLogger({ format: 'pretty', level: 'error', fd: 2, base: { name: 'edgefed-simulate' } }) : undefined;
  try {
    fleet = await startFleet({
      count,
      prefix,
      brokerUrl: str(flags, 'broker') ?? 'mqtt://127.0.0.1:1883',
      capabilities: list(flags, 'capabilities'),
      labels: { sim: 'true', ...labels(flags) },
      heartbeatIntervalMs: parseDuration(str(flags, 'heartbeat-interval') ?? '5s'),
      keepaliveS: int(flags, 'keepalive', { min: 0, max: 65535 }) ?? 30,
      ratePerSecond: int(flags, 'rate', { min: 1, max: 100_000 }) ?? 500,
      topicRoot: str(flags, 'topic-root') ?? DEFAULT_TOPIC_ROOT,
      ...(tokens.tokenFor ? { tokenFor: tokens.tokenFor } : {}),
      ...(logger ? { logger } : {}),
      onProgress: progress,
    });
  } catch (err) {
    throw new CliError(`edgefed simulate: ${(err as Error).message}`);
  }
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    if (stopAfter !== undefined) setTimeout(() => resolve('duration'), stopAfter).unref();
  });
  stopping = true;
  process.stderr.write(`\nsimulate: stopping ${fleet.agents.length} agents (${signal})\n`);
  await fleet.stop();
  if (!flags.keep) {
    const hub = await removalTarget(flags, tokens.operatorToken);
    const ids = fleet.agents.map((_, i) => `${prefix}-${i}`);
    process.stderr.write(cleanupReport(await removeSimulated(hub, ids), ids.length, prefix));
  }
  return 0;
}

/** The hub's API for the removal: --hub, and --token or an operator token from the hub's key. */
async function removalTarget(flags: Flags, operatorToken: (() => Promise<string>) | undefined): Promise<HubTarget> {
  const hub = hubOf(flags);
  if (hub.token === undefined && operatorToken) hub.token = await operatorToken();
  return hub;
}
