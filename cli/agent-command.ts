/**
 * `edgefed agent`: runs the edge agent until SIGTERM/SIGINT.
 * Imports only node builtins, the agent and lib/ (through cli/args.ts): no
 * broker, hub, ajv or pino, so an idle agent process stays small.
 */
import os from 'node:os';
import path from 'node:path';
import { ActionModuleError, AGENT_DEFAULTS, AgentConfigError, loadActionModule, loadStateHandler, startAgent, StateHandlerModuleError, type ActionMap, type Agent, type DesiredHandler } from '../agent/index.js';
import { parseDuration } from '../lib/duration.js';
import { MAX_CONCURRENCY } from '../lib/limits.js';
import { jsonLogger, type Logger } from '../lib/log.js';
import { CliError, helpText, int, labels, list, logLevel, parseFlags, str, type Flags, type FlagSpecs } from './args.js';
import { cliLogger, LOG_FORMAT_FLAG, logFormat } from './logger.js';
import { readPem } from './tls-files.js';

const FLAGS: FlagSpecs = {
  id: { type: 'string', value: 'NODE_ID', help: "This node's id, also its MQTT client id (required)" },
  capabilities: { type: 'string', value: 'LIST', help: 'Comma-separated capabilities, e.g. monitoring,basic-actions (required)' },
  broker: { type: 'string', value: 'URL', help: 'MQTT broker URL; or the nodes of a broker cluster, comma-separated (each reconnect tries the next)', default: AGENT_DEFAULTS.brokerUrl },
  label: { type: 'string', multiple: true, value: 'NAME=VALUE', help: 'A label for the registration; repeatable' },
  endpoint: { type: 'string', value: 'URL', help: 'Where this node can be reached, published in the registration' },
  keepalive: { type: 'string', value: 'SECONDS', help: 'MQTT keepalive; the broker declares the node lost after ~1.5x', default: String(AGENT_DEFAULTS.keepaliveS) },
  'heartbeat-interval': { type: 'string', value: 'DURATION', help: 'Heartbeat period, e.g. 5s or 500ms', default: `${AGENT_DEFAULTS.heartbeatIntervalMs / 1000}s` },
  'topic-root': { type: 'string', value: 'ROOT', help: 'Topic root shared with the hub', default: AGENT_DEFAULTS.topicRoot },
  concurrency: { type: 'string', value: 'N', help: 'Work packages run at once (max_concurrency)', default: String(AGENT_DEFAULTS.concurrency) },
  'log-level': { type: 'string', value: 'LEVEL', help: 'debug, info, warn, error or silent', default: 'info' },
  'log-format': LOG_FORMAT_FLAG,
  actions: { type: 'string', value: 'FILE', help: 'JavaScript module exporting actions { name: async (params, ctx) => result }, besides echo and sleep' },
  'state-handler': { type: 'string', value: 'FILE', help: 'JavaScript module whose default export applies the desired state: (state, delta, ctx) => reported; without it the state is written to desired-state.json in the spool dir' },
  'spool-dir': { type: 'string', value: 'DIR', help: 'Where execution updates wait while the broker is unreachable (default ~/.edgefed/spool/NODE_ID)' },
  'spool-max': { type: 'string', value: 'N', help: 'Updates the spool keeps; beyond it the oldest are dropped', default: String(AGENT_DEFAULTS.spoolMax) },
  'replay-final': { type: 'string', value: 'DURATION', help: 'How long the final update of finished work is kept to send again to a restarted hub (0 = never)', default: `${AGENT_DEFAULTS.replayFinalMs / 60_000}m` },
  ca: { type: 'string', value: 'FILE', help: 'PEM CA that signed the broker\'s certificate, for an mqtts:// --broker (e.g. ca.pem of "edgefed certs dev")' },
  cert: { type: 'string', value: 'FILE', help: 'PEM client certificate, for a broker with mutual TLS (--tls-ca); needs --key' },
  key: { type: 'string', value: 'FILE', help: 'PEM private key of --cert' },
  token: { type: 'string', value: 'JWT', help: 'This node\'s token for a broker with --auth jwt ("edgefed token issue"); sent as the MQTT password, the node id as username' },
};

const USAGE = 'edgefed agent --id NODE_ID --capabilities LIST [--broker URL] [--label NAME=VALUE ...] [options]';
const SUMMARY = 'Runs the edge agent: registers this node with the hub over MQTT, sends heartbeats, answers commands\nand runs work packages (built-in actions echo and sleep, plus those of --actions).\nLogs JSON lines to stderr. Stops cleanly on SIGTERM or SIGINT.';
const HINT = 'Run "edgefed agent --help".';

export async function runAgentCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let agent: Agent;
  let log: Logger;
  try {
    const { flags, positionals } = parseFlags('agent', argv, FLAGS, env);
    if (flags.help === true) {
      process.stdout.write(helpText(USAGE, SUMMARY, FLAGS));
      return 0;
    }
    if (positionals.length > 0) throw new CliError(`edgefed agent: unexpected argument "${positionals[0]}". ${HINT}`);
    log = await agentLogger(flags);
    const nodeId = required(str(flags, 'id'), 'id');
    const capabilities = list(flags, 'capabilities');
    if (capabilities.length === 0) required(undefined, 'capabilities');
    const brokerUrl = str(flags, 'broker') ?? AGENT_DEFAULTS.brokerUrl;
    const actions = await userActions(str(flags, 'actions'));
    const desiredHandler = await stateHandler(str(flags, 'state-handler'));
    const options = {
      nodeId,
      capabilities,
      brokerUrl,
      labels: labels(flags),
      endpoint: str(flags, 'endpoint'),
      keepaliveS: int(flags, 'keepalive', { min: 0, max: 65_535 }),
      heartbeatIntervalMs: duration(str(flags, 'heartbeat-interval'), 'heartbeat-interval'),
      concurrency: int(flags, 'concurrency', { min: 1, max: MAX_CONCURRENCY }),
      topicRoot: str(flags, 'topic-root'),
      logger: log,
      actions,
      ...(desiredHandler ? { desiredHandler } : {}),
      spoolDir: str(flags, 'spool-dir') ?? defaultSpoolDir(nodeId),
      spoolMax: int(flags, 'spool-max', { min: 1, max: 1_000_000 }),
      replayFinalMs: duration(str(flags, 'replay-final'), 'replay-final'),
      ...credentials(nodeId, str(flags, 'token')),
      ...tlsFiles(flags, brokerUrl),
    };
    agent = await startAgent(options);
    log.info({ broker: redact(brokerUrl) }, 'connecting');
  } catch (err) {
    if (err instanceof CliError) {
      const message = err.message.startsWith('edgefed agent:') ? err.message : `edgefed agent: ${err.message}`;
      process.stderr.write(`${message}${message.includes('--help') ? '' : `. ${HINT}`}\n`);
      return err.exitCode;
    }
    if (err instanceof AgentConfigError) {
      process.stderr.write(`edgefed agent: ${err.code}: ${err.problems.map(inFlagTerms).join('; ')}. ${HINT}\n`);
      return 2;
    }
    throw err;
  }
  return untilSignal(agent, log);
}

/** Resolves 0 once a SIGTERM/SIGINT has stopped the agent (stop() is bounded, so this cannot hang). */
function untilSignal(agent: Agent, log: Logger): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // An operator pressing Ctrl-C twice wants out now, not after the goodbye.
        log.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'stopping agent');
      void agent.stop().then(() => {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        resolve(0);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** The agent reports option names (heartbeatIntervalMs); a CLI user typed flags (--heartbeat-interval). */
const OPTION_FLAGS: Record<string, string> = {
  nodeId: '--id', capabilities: '--capabilities', brokerUrl: '--broker', labels: '--label', 'label name': '--label name',
  label: '--label', endpoint: '--endpoint', keepaliveS: '--keepalive (seconds)', heartbeatIntervalMs: '--heartbeat-interval (ms)',
  concurrency: '--concurrency', spoolDir: '--spool-dir', spoolMax: '--spool-max', replayFinalMs: '--replay-final (ms)', 'action name': '--actions: action name', action: '--actions: action',
};

function inFlagTerms(problem: string): string {
  const name = Object.keys(OPTION_FLAGS).sort((a, b) => b.length - a.length).find((n) => problem.startsWith(`${n} `));
  return name === undefined ? problem : `${OPTION_FLAGS[name]}${problem.slice(name.length)}`;
}

/** `--actions FILE`, resolved against the working directory; every problem of the module is an exit-2 flag error. */
async function userActions(file: string | undefined): Promise<ActionMap | undefined> {
  if (file === undefined || file === '') return undefined;
  try {
    return await loadActionModule(file);
  } catch (err) {
    if (err instanceof ActionModuleError) throw new CliError(`edgefed agent: --actions ${err.file}: ${err.problems.join('; ')}`);
    throw err;
  }
}

/** `--state-handler FILE`: a module problem is an exit-2 flag error. */
async function stateHandler(file: string | undefined): Promise<DesiredHandler | undefined> {
  if (file === undefined) return undefined;
  try {
    return await loadStateHandler(file);
  } catch (err) {
    if (err instanceof StateHandlerModuleError) throw new CliError(`edgefed agent: --state-handler ${err.detail}`);
    throw err;
  }
}

/** One spool per node, so two agents of one user never share (and replay) each other's updates. */
function defaultSpoolDir(nodeId: string): string {
  return path.join(os.homedir(), '.edgefed', 'spool', nodeId);
}

/** With a token, the username is the node id: the broker checks it against the token's subject. */
function credentials(nodeId: string, token: string | undefined): { username?: string; password?: string } {
  return token === undefined || token === '' ? {} : { username: nodeId, password: token.trim() };
}

/**
 * `--ca/--cert/--key` as mqtt.js TLS options. Refused with a plain mqtt://
 * broker: the files would be ignored and the operator would believe the link encrypted.
 */
function tlsFiles(flags: Flags, brokerUrl: string): { mqtt?: { ca?: Buffer; cert?: Buffer; key?: Buffer } } {
  const [ca, cert, key] = [str(flags, 'ca'), str(flags, 'cert'), str(flags, 'key')];
  if (ca === undefined && cert === undefined && key === undefined) return {};
  if ((cert === undefined) !== (key === undefined)) {
    throw new CliError(`edgefed agent: --${cert === undefined ? 'cert' : 'key'} is missing: a client certificate needs both --cert and --key. ${HINT}`);
  }
  if (!/^(mqtts|ssl|wss):/i.test(brokerUrl)) {
    throw new CliError(`edgefed agent: --ca/--cert/--key need a TLS broker URL (mqtts://host:8883), got --broker ${redact(brokerUrl)}. ${HINT}`);
  }
  return {
    mqtt: {
      ...(ca !== undefined ? { ca: readPem(ca, 'ca', 'agent') } : {}),
      ...(cert !== undefined ? { cert: readPem(cert, 'cert', 'agent') } : {}),
      ...(key !== undefined ? { key: readPem(key, 'key', 'agent') } : {}),
    },
  };
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') {
    throw new CliError(`edgefed agent: --${flag} is required (or set EDGEFED_${flag.toUpperCase()}). ${HINT}`);
  }
  return value;
}

function duration(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseDuration(text);
  } catch {
    throw new CliError(`edgefed agent: --${flag} must be a duration such as 500ms, 5s or 1m, got "${text}". ${HINT}`);
  }
}

/** Broker URLs may carry credentials; logs must not. */
function redact(urls: string): string {
  return urls.split(',').map((url) => {
    try {
      const u = new URL(url.trim());
      if (u.password) u.password = '***';
      return u.toString();
    } catch {
      return url;
    }
  }).join(',');
}

/** JSON lines with the agent's own small logger (what a device runs); pino-pretty only when a person reads it. */
async function agentLogger(flags: Flags): Promise<Logger> {
  const level = logLevel(flags, 'agent');
  const base = { name: 'edgefed-agent' };
  if (logFormat(flags, 'agent', 2) === 'json') return jsonLogger(level, base);
  return cliLogger({ format: 'pretty', level, fd: 2, base });
}
