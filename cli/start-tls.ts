/**
 * The TLS flags of `edgefed start`, kept apart from start.ts: they read files
 * and check them, and name the flag at fault when something is wrong.
 */
import { DEFAULT_MQTTS_PORT, type BrokerTlsOptions } from '../broker/index.js';
import { serverTlsOptions, TlsMaterialError, type TlsField } from '../lib/tls-material.js';
import { CliError, int, str, type Flags, type FlagSpecs } from './args.js';
import { readPem } from './tls-files.js';

export const TLS_START_SPECS: FlagSpecs = {
  'tls-cert': { type: 'string', value: 'FILE', help: 'PEM server certificate: adds an mqtts listener and serves the API over HTTPS' },
  'tls-key': { type: 'string', value: 'FILE', help: 'PEM private key of --tls-cert' },
  'tls-ca': { type: 'string', value: 'FILE', help: 'PEM CA: turns on mutual TLS (MQTT and HTTPS clients need a certificate it signed)' },
  'mqtts-port': { type: 'string', value: 'PORT', help: 'mqtts port with --tls-cert (0 = any free port)', default: String(DEFAULT_MQTTS_PORT) },
  'no-plain': { type: 'boolean', help: 'No plain MQTT listener: mqtts only (needs --tls-cert)' },
};

const FLAG_OF: Record<TlsField, string> = { cert: 'tls-cert', key: 'tls-key', ca: 'tls-ca' };

/** `{ tls, plain }` for startFederation, or `{}` without TLS flags. Throws CliError naming the flag. */
export function tlsStartOptions(flags: Flags): { tls?: BrokerTlsOptions; plain?: boolean } {
  const certFile = str(flags, 'tls-cert');
  const keyFile = str(flags, 'tls-key');
  const caFile = str(flags, 'tls-ca');
  const plain = flags['no-plain'] !== true;
  if (certFile === undefined && keyFile === undefined) {
    if (caFile !== undefined) throw new CliError('edgefed start: --tls-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)');
    if (!plain) throw new CliError('edgefed start: --no-plain turns off the only MQTT listener; add --tls-cert and --tls-key');
    return {};
  }
  if (certFile === undefined || keyFile === undefined) {
    throw new CliError(`edgefed start: --${certFile === undefined ? 'tls-cert' : 'tls-key'} is missing: TLS needs both --tls-cert and --tls-key`);
  }
  const tls: BrokerTlsOptions = {
    cert: readPem(certFile, 'tls-cert', 'start'),
    key: readPem(keyFile, 'tls-key', 'start'),
    ...(caFile !== undefined ? { ca: readPem(caFile, 'tls-ca', 'start') } : {}),
    port: int(flags, 'mqtts-port', { min: 0, max: 65535 }) ?? DEFAULT_MQTTS_PORT,
  };
  checkMaterial(tls, { cert: certFile, key: keyFile, ca: caFile });
  return { tls, plain };
}

/** The library checks again; checking here lets the message name the flag and the file. */
function checkMaterial(tls: BrokerTlsOptions, files: Record<TlsField, string | undefined>): void {
  try {
    serverTlsOptions(tls);
  } catch (err) {
    if (!(err instanceof TlsMaterialError)) throw err;
    throw new CliError(`edgefed start: ${err.code}: --${FLAG_OF[err.field]} ${files[err.field] ?? ''} ${err.problem}`);
  }
}
