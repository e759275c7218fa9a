/**
 * `edgefed start`: the embedded broker (or an external one) plus the hub and
 * its HTTP API, in one process, stopped cleanly by SIGINT/SIGTERM.
 */
import path from 'node:path';
import { MAX_PACKET_BYTES, MAX_PAYLOAD_BYTES } from '../lib/limits.js';
import { startFederation } from '../server/federation.js';
import { checkClientId } from '../hub/link.js';
import type { Logger } from '../lib/log.js';
import { DEFAULT_TOPIC_ROOT } from '../lib/topics.js';
import { parseDuration } from '../lib/duration.js';
import { CliError, helpText, int, logLevel, parseFlags, str, type Flags, type FlagSpecs } from './args.js';
import { cliLogger, LOG_FORMAT_FLAG, logFormat } from './logger.js';
import { TLS_START_SPECS, tlsStartOptions } from './start-tls.js';
import { AUTH_START_SPECS, authStartOptions } from './start-auth.js';

const SPECS: FlagSpecs = {
  'mqtt-port': { type: 'string', value: 'PORT', help: 'MQTT port of the embedded broker (0 = any free port)', default: '1883' },
  'http-port': { type: 'string', value: 'PORT', help: 'HTTP API port (0 = any free port)', default: '8080' },
  bind: { type: 'string', value: 'ADDR', help: 'Address the broker and API listen on; non-loopback needs auth or --insecure', default: '127.0.0.1' },
  insecure: { type: 'boolean', help: 'Allow listening on a non-loopback address without authentication' },
  'data-dir': { type: 'string', value: 'DIR', help: 'Directory of the registry (registry.json) and its lock', default: './data' },
  store: { type: 'string', value: 'URL', help: 'Keep the registry and work packages in PostgreSQL (postgres://USER:PASSWORD@HOST:PORT/DB) instead of files in --data-dir; hubs on one database are active/standby' },
  'hub-id': { type: 'string', value: 'ID', help: 'With --store: this hub\'s name in the active/standby lease (default: host name and a hash of --data-dir)' },
  'lease-ttl': { type: 'string', value: 'DURATION', help: 'With --store: how long the active hub\'s lease lasts without renewal; a standby takes over after it', default: '10s' },
  'broker-url': { type: 'string', value: 'URL', help: 'Use this external broker (mqtt://host:1883) instead of the embedded one; the nodes of a broker cluster comma-separated' },
  'offline-retention': { type: 'string', value: 'DURATION', help: 'Remove a node\'s record once it has been offline this long (0 = keep for ever)', default: '7d' },
  'will-grace': { type: 'string', value: 'DURATION', help: 'Wait this long before applying a node\'s will that carries a session (a broker cluster may publish it just before the node\'s online from another node)', default: '0s' },
  'hub-client-id': { type: 'string', value: 'ID', help: 'MQTT client id of the hub\'s persistent session on --broker-url (default edgefed-hub, or derived from --topic-root)' },
  'topic-root': { type: 'string', value: 'ROOT', help: 'Topic root of the federation', default: DEFAULT_TOPIC_ROOT },
  'max-packet': { type: 'string', value: 'BYTES', help: 'Largest MQTT packet the embedded broker accepts', default: String(MAX_PACKET_BYTES) },
  'max-payload': { type: 'string', value: 'BYTES', help: 'Largest node payload the hub accepts', default: String(MAX_PAYLOAD_BYTES) },
  'log-level': { type: 'string', value: 'LEVEL', help: 'debug, info, warn, error or silent', default: 'info' },
  'log-format': LOG_FORMAT_FLAG,
  'max-connections': { type: 'string', value: 'N', help: 'Open MQTT connections the embedded broker allows (0 = no limit)', default: '10000' },
  'connect-rate': { type: 'string', value: 'N', help: 'New connections per second one address may sustain (0 = no limit; loopback is exempt)', default: '20' },
  'connect-burst': { type: 'string', value: 'N', help: 'New connections one address may open in a burst', default: '50' },
  ...TLS_START_SPECS,
  ...AUTH_START_SPECS,
};

export async function runStart(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { flags } = parseFlags('start', argv, SPECS, env);
  if (flags.help) {
    process.stdout.write(helpText('edgefed start [options]', 'Starts the embedded MQTT broker and the hub: node registry, liveness, HTTP API.', SPECS));
    return 0;
  }
  const log: Logger = await cliLogger({ format: logFormat(flags, 'start', 1), level: logLevel(flags, 'start'), fd: 1, base: { app: 'edgefed' } });
  const brokerUrl = str(flags, 'broker-url');
  const store = str(flags, 'store');
  const clientId = str(flags, 'hub-client-id');
  if (clientId !== undefined) {
    try { checkClientId(clientId); } catch (err) { throw new CliError(`edgefed start: --hub-client-id: ${(err as Error).message}`); }
  }
  const fed = await startFederation({
    bind: str(flags, 'bind') ?? '127.0.0.1',
    insecure: flags.insecure === true,
    mqttPort: int(flags, 'mqtt-port', { min: 0, max: 65535 }) ?? 1883,
    httpPort: int(flags, 'http-port', { min: 0, max: 65535 }) ?? 8080,
    dataDir: path.resolve(str(flags, 'data-dir') ?? './data'),
    ...(brokerUrl ? { brokerUrl } : {}),
    ...(store !== undefined ? { store, ha: haOptions(flags) } : {}),
    topicRoot: str(flags, 'topic-root') ?? DEFAULT_TOPIC_ROOT,
    maxPacketBytes: int(flags, 'max-packet', { min: 1024, max: 256 * 1024 * 1024 }) ?? MAX_PACKET_BYTES,
    maxPayloadBytes: int(flags, 'max-payload', { min: 256, max: 16 * 1024 * 1024 }) ?? MAX_PAYLOAD_BYTES,
    logger: log,
    hub: {
      ...(clientId !== undefined ? { clientId } : {}),
      willGraceMs: willGrace(str(flags, 'will-grace') ?? '0s'),
      offlineRetentionMs: offlineRetention(str(flags, 'offline-retention') ?? '7d'),
    },
    broker: {
      maxConnections: int(flags, 'max-connections', { min: 0, max: 10_000_000 }) ?? 10_000,
      connectRatePerAddress: int(flags, 'connect-rate', { min: 0, max: 1_000_000 }) ?? 20,
      connectBurstPerAddress: int(flags, 'connect-burst', { min: 1, max: 1_000_000 }) ?? 50,
    },
    ...tlsStartOptions(flags),
    ...authStartOptions(flags),
  });
  const dataDir = path.resolve(str(flags, 'data-dir') ?? './data');
  const stored = fed.hubApi.storeStatus().location;
  const ha = fed.ha?.status();
  log.info({
    mqtt_url: fed.mqttUrl, mqtts_url: fed.mqttsUrl, http_url: fed.api.url, data_dir: dataDir, store: stored, auth: fed.authStats ? 'jwt' : 'none',
    ...(ha ? { role: ha.role, hub_id: ha.hub_id } : {}),
  }, 'edgefed ready');
  if (process.stderr.isTTY) {
    process.stderr.write(`edgefed ready: MQTT ${fed.mqttUrl ?? '-'}${fed.mqttsUrl ? `  MQTTS ${fed.mqttsUrl}` : ''}  HTTP ${fed.api.url}  data ${stored}  (Ctrl-C to stop)\n`);
    process.stderr.write(`  dashboard ${fed.api.url}/   metrics ${fed.api.url}/metrics\n`);
  }
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ signal }, 'stopping');
  await fed.stop();
  return 0;
}

/** --hub-id and --lease-ttl: renewals every third of the TTL, as the issue's 10 s / 3 s. */
function haOptions(flags: Flags): { hubId?: string; ttlMs: number; renewMs: number } {
  const ttlMs = leaseTtl(str(flags, 'lease-ttl') ?? '10s');
  const hubId = str(flags, 'hub-id');
  if (hubId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/.test(hubId)) throw new CliError('edgefed start: --hub-id: 1 to 64 letters, digits and . _ : -, starting with a letter or digit');
  return { ...(hubId !== undefined ? { hubId } : {}), ttlMs, renewMs: Math.max(1000, Math.floor(ttlMs / 3)) };
}

function leaseTtl(text: string): number {
  let ms: number;
  try { ms = parseDuration(text); } catch { ms = NaN; }
  if (!(ms >= 3000 && ms <= 600_000)) throw new CliError(`edgefed start: --lease-ttl must be a duration from 3s to 10m, got "${text}"`);
  return ms;
}

function willGrace(text: string): number {
  let ms: number;
  try { ms = parseDuration(text); } catch { ms = NaN; }
  if (!(ms >= 0 && ms <= 300_000)) throw new CliError(`edgefed start: --will-grace must be a duration from 0s to 5m, got "${text}"`);
  return ms;
}

function offlineRetention(text: string): number {
  let ms: number;
  try { ms = text === '0' ? 0 : parseDuration(text); } catch { ms = NaN; }
  if (!(ms >= 0 && ms <= 10 * 365 * 24 * 3600 * 1000)) throw new CliError(`edgefed start: --offline-retention must be a duration such as 24h or 7d (0 keeps offline nodes for ever), got "${text}"`);
  return ms;
}
