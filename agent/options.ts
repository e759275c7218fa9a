/**
 * Agent options: one interface, one defaults object, one hand-written
 * validator, which checks the options early with the bounds the JSON Schemas
 * are built from (lib/limits.ts), so a bad option fails at start, not as a
 * refused registration; test/agent.test.ts checks the agent's payloads
 * against the real schemas.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { isValidId } from '../lib/ids.js';
import {
  MAX_CAPABILITIES, MAX_CONCURRENCY, MAX_ENDPOINT_LENGTH, MAX_HEARTBEAT_INTERVAL_MS, MAX_LABEL_VALUE_LENGTH, MAX_LABELS,
  MIN_HEARTBEAT_INTERVAL_MS,
} from '../lib/limits.js';
import { jsonLogger, type Logger } from '../lib/log.js';
import { DEFAULT_TOPIC_ROOT, validateRoot } from '../lib/topics.js';
import type { ActionMap } from './actions.js';
import type { DesiredHandler } from './desired.js';
import { DEFAULT_REPLAY_FINAL_MS } from './recent-finals.js';
import { DEFAULT_SPOOL_MAX } from './spool.js';
import { EdgefedError } from '../lib/errors.js';

export interface AgentOptions {
  /** This node's id; also its MQTT client id. `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`. */
  nodeId: string;
  /** What this node can run: 1..MAX_CAPABILITIES (32) distinct ids. Work packages are routed by capability. */
  capabilities: string[];
  /**
   * Broker to connect to, e.g. `mqtt://hub.local:1883` or `mqtts://...`; or
   * several nodes of a broker cluster, comma-separated
   * (`mqtt://a:1883,mqtt://b:1883`): each reconnect tries the next one.
   * Ignored when `connect` is given.
   */
  brokerUrl?: string;
  /** Free-form labels published in the registration (≤ 32; keys are ids, values ≤ 128 chars). */
  labels?: Record<string, string>;
  /** Where this node can be reached (e.g. its HTTP API), published in the registration. */
  endpoint?: string;
  /** MQTT keepalive in seconds: how soon the broker declares the node lost (≈ 1.5x this) and publishes its will. */
  keepaliveS?: number;
  /** Heartbeat period in ms (100..86400000); each beat is jittered by ±10%. Published so the hub can detect staleness. */
  heartbeatIntervalMs?: number;
  /** How many work packages this node runs at once, announced as `max_concurrency` (1..1024). */
  concurrency?: number;
  /** Topic root shared with the hub. */
  topicRoot?: string;
  /** Where the agent logs; the default writes JSON lines at `warn` and above to stderr. */
  logger?: Logger;
  /** MQTT username (e.g. a node name for broker authentication). */
  username?: string;
  /** MQTT password (e.g. a JWT); passed to the broker as is. */
  password?: string;
  /** Reconnect backoff base in ms: the first retry waits a random time up to this. */
  reconnectMinMs?: number;
  /** Reconnect backoff cap in ms: no retry waits longer than this. */
  reconnectMaxMs?: number;
  /**
   * After the broker refused this agent's credentials (CONNACK 4/5) for a
   * reason retrying cannot cure (no token, not a JWT, expired, another node's),
   * the wait in ms before connecting again (default 5 minutes).
   */
  authRetryMs?: number;
  /** Upper bound in ms for `stop()`: after it the connection is dropped without waiting for the broker. */
  stopTimeoutMs?: number;
  /**
   * Escape hatch for mqtt.js options (TLS material, connectTimeout, ...). Applied
   * over the agent's choices except `clientId` and `will`, which the presence
   * protocol depends on; `reconnectPeriod` is overwritten by the backoff.
   */
  mqtt?: Partial<IClientOptions>;
  /**
   * Creates the MQTT client from the agent's options (default: a TCP/TLS socket to
   * `brokerUrl`, see transport.ts). Lets tests and embedders use another transport,
   * e.g. an in-memory broker's `connectInMemory`.
   */
  connect?: (opts: IClientOptions) => MqttClient;
  /**
   * Actions this node runs, by name (an id), besides the built-in `echo` and
   * `sleep`; a name given here replaces a built-in. A trigger naming any other
   * action is rejected.
   */
  actions?: ActionMap;
  /**
   * Directory of the offline spool: execution updates produced while the
   * broker is unreachable are appended to `executions.jsonl` there and
   * replayed on the next connect, also by the next agent started with the same
   * directory. Without it the spool is in memory only (same bound) and is lost
   * with the process. One directory per node.
   */
  spoolDir?: string;
  /**
   * Applies the node's desired state (issue 16): called with each new
   * version's state, its delta against the last report, and a context; what
   * it returns is reported. Without it the desired state is reported as is
   * and kept in `desired-state.json` in `spoolDir`. Also `agent.onDesired()`.
   */
  desiredHandler?: DesiredHandler;
  /** Updates the spool keeps at most (1..1,000,000); beyond it the oldest are dropped. */
  spoolMax?: number;
  /**
   * How long (ms, 0..86,400,000; 0 turns it off) the agent keeps the final
   * update of each finished execution to replay it to a restarted hub (a new
   * hub `boot_id`). A hub killed before writing a result it had received
   * would otherwise time the execution out and run the work again. Bounded
   * also to the newest 1,000 finals and about 2 MB.
   */
  replayFinalMs?: number;
}

export const AGENT_DEFAULTS = {
  brokerUrl: 'mqtt://127.0.0.1:1883',
  labels: Object.freeze({}) as Record<string, string>,
  keepaliveS: 30,
  heartbeatIntervalMs: 5000,
  concurrency: 4,
  topicRoot: DEFAULT_TOPIC_ROOT,
  logger: jsonLogger('warn'),
  reconnectMinMs: 1000,
  reconnectMaxMs: 30_000,
  authRetryMs: 300_000,
  stopTimeoutMs: 3000,
  spoolMax: DEFAULT_SPOOL_MAX,
  replayFinalMs: DEFAULT_REPLAY_FINAL_MS,
} as const;

type Defaulted = keyof typeof AGENT_DEFAULTS;
export type ResolvedAgentOptions = Omit<AgentOptions, Defaulted> & { [K in Defaulted]-?: NonNullable<AgentOptions[K]> };

export class AgentConfigError extends EdgefedError {
  override readonly name = 'AgentConfigError';
  constructor(readonly problems: string[]) {
    super('EDGEFED_ERR_AGENT_CONFIG', problems.join('; '));
  }
}

const ID_HINT = '1-64 chars of letters, digits, . _ -, starting with a letter or digit';
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout silently turns larger values into 1 ms
const BROKER_PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:']);

/** Merges the defaults and throws AgentConfigError listing every problem found. */
export function resolveOptions(input: AgentOptions): ResolvedAgentOptions {
  if (typeof input !== 'object' || input === null) throw new AgentConfigError(['options must be an object']);
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const o = { ...AGENT_DEFAULTS, ...defined } as ResolvedAgentOptions;
  const problems: string[] = [];
  const bad = (msg: string) => problems.push(msg);

  if (!isValidId(o.nodeId)) bad(`nodeId ${show(o.nodeId)} is not a valid id (${ID_HINT})`);
  checkCapabilities(o.capabilities, bad);
  checkLabels(o.labels, bad);
  if (o.endpoint !== undefined && (typeof o.endpoint !== 'string' || o.endpoint.length < 1 || o.endpoint.length > MAX_ENDPOINT_LENGTH)) {
    bad(`endpoint must be a string of 1..${MAX_ENDPOINT_LENGTH} characters`);
  }
  checkInt('keepaliveS', o.keepaliveS, 0, 65_535, bad);
  checkInt('heartbeatIntervalMs', o.heartbeatIntervalMs, MIN_HEARTBEAT_INTERVAL_MS, MAX_HEARTBEAT_INTERVAL_MS, bad);
  checkInt('concurrency', o.concurrency, 1, MAX_CONCURRENCY, bad);
  checkInt('reconnectMinMs', o.reconnectMinMs, 1, MAX_TIMER_MS, bad);
  checkInt('reconnectMaxMs', o.reconnectMaxMs, 1, MAX_TIMER_MS, bad);
  checkInt('authRetryMs', o.authRetryMs, 1, MAX_TIMER_MS, bad);
  if (o.reconnectMaxMs < o.reconnectMinMs) bad(`reconnectMaxMs (${o.reconnectMaxMs}) must be >= reconnectMinMs (${o.reconnectMinMs})`);
  checkInt('stopTimeoutMs', o.stopTimeoutMs, 1, MAX_TIMER_MS, bad);
  try {
    validateRoot(o.topicRoot);
  } catch {
    bad(`topicRoot ${show(o.topicRoot)} is not usable (no + # NUL, no leading $ or /, no trailing /)`);
  }
  if (o.connect !== undefined && typeof o.connect !== 'function') bad('connect must be a function');
  else if (o.connect === undefined) checkBrokerUrl(o.brokerUrl, bad);
  if (o.username !== undefined && typeof o.username !== 'string') bad('username must be a string');
  if (o.password !== undefined && typeof o.password !== 'string') bad('password must be a string');
  checkActions(o.actions, bad);
  if (o.desiredHandler !== undefined && typeof o.desiredHandler !== 'function') bad('desiredHandler must be a function (state, delta, ctx) => reported');
  if (o.spoolDir !== undefined && (typeof o.spoolDir !== 'string' || o.spoolDir.length === 0)) bad('spoolDir must be a non-empty path');
  checkInt('spoolMax', o.spoolMax, 1, 1_000_000, bad);
  checkInt('replayFinalMs', o.replayFinalMs, 0, 86_400_000, bad);

  if (problems.length > 0) throw new AgentConfigError(problems);
  return o;
}

function checkCapabilities(caps: unknown, bad: (msg: string) => void): void {
  if (!Array.isArray(caps)) {
    bad('capabilities must be an array of ids');
    return;
  }
  if (caps.length < 1 || caps.length > MAX_CAPABILITIES) bad(`capabilities must hold 1..${MAX_CAPABILITIES} ids, got ${caps.length}`);
  const invalid = caps.filter((c) => !isValidId(c));
  if (invalid.length > 0) bad(`capabilities ${invalid.map(show).join(', ')} are not valid ids (${ID_HINT})`);
  const dupes = caps.filter((c, i) => caps.indexOf(c) !== i);
  if (dupes.length > 0) bad(`capabilities must be distinct; repeated: ${[...new Set(dupes)].map(show).join(', ')}`);
}

function checkActions(actions: unknown, bad: (msg: string) => void): void {
  if (actions === undefined) return;
  if (typeof actions !== 'object' || actions === null || Array.isArray(actions)) {
    bad('actions must be an object of functions by action name');
    return;
  }
  for (const [name, handler] of Object.entries(actions)) {
    if (!isValidId(name)) bad(`action name ${show(name)} is not a valid id (${ID_HINT})`);
    else if (typeof handler !== 'function') bad(`action ${show(name)} must be a function (params, ctx) => result`);
  }
}

function checkLabels(labels: unknown, bad: (msg: string) => void): void {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    bad('labels must be an object of string values');
    return;
  }
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) bad(`at most ${MAX_LABELS} labels are allowed, got ${entries.length}`);
  for (const [key, value] of entries) {
    if (!isValidId(key)) bad(`label name ${show(key)} is not a valid id (${ID_HINT})`);
    if (typeof value !== 'string' || value.length > MAX_LABEL_VALUE_LENGTH) bad(`label ${show(key)} must be a string of at most ${MAX_LABEL_VALUE_LENGTH} characters`);
  }
}

/** `brokerUrl` as a list: one URL, or several comma-separated (a broker cluster). */
export function brokerUrls(brokerUrl: string): string[] {
  return brokerUrl.split(',').map((u) => u.trim()).filter(Boolean);
}

function checkBrokerUrl(value: unknown, bad: (msg: string) => void): void {
  const urls = typeof value === 'string' ? brokerUrls(value) : [value];
  if (urls.length === 0) bad('brokerUrl is empty (e.g. mqtt://127.0.0.1:1883)');
  for (const url of urls) checkOneBrokerUrl(url, bad);
  if (urls.length > 1 && urls.some((u) => !/^(mqtts?|tcp|ssl):/i.test(String(u)))) {
    bad('a list of brokers takes mqtt:// or mqtts:// URLs (WebSocket URLs one at a time)');
  }
}

function checkOneBrokerUrl(url: unknown, bad: (msg: string) => void): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(String(url)).protocol;
  } catch {
    bad(`brokerUrl ${show(url)} is not a URL (e.g. mqtt://127.0.0.1:1883)`);
    return;
  }
  if (!BROKER_PROTOCOLS.has(protocol)) bad(`brokerUrl ${show(url)} must use one of ${[...BROKER_PROTOCOLS].join(' ')}`);
}

function checkInt(name: string, value: unknown, min: number, max: number, bad: (msg: string) => void): void {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    bad(`${name} must be an integer in ${min}..${max}, got ${show(value)}`);
  }
}

function show(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
