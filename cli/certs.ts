/**
 * `edgefed certs dev --out DIR`: a throwaway CA, a server certificate for
 * localhost / 127.0.0.1 / ::1 and a client certificate, to try mqtts, HTTPS
 * and mutual TLS on one machine. Made by the `openssl` binary (run with
 * execFile, never a shell): it is on every machine that has mosquitto, and a
 * CA that signs needs more of X.509 than node:crypto offers.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isIP } from 'node:net';
import { CliError, helpText, int, list, parseFlags, str, type FlagSpecs } from './args.js';

const SPECS: FlagSpecs = {
  out: { type: 'string', value: 'DIR', help: 'Directory to write the PEM files to (created if missing; required)' },
  days: { type: 'string', value: 'N', help: 'Validity of the CA and the certificates', default: '30' },
  force: { type: 'boolean', help: 'Overwrite the files of an earlier run in DIR' },
  host: { type: 'string', multiple: true, value: 'NAME', help: 'Also name this host (a DNS name or an IP address) in the server certificate; comma-separated or repeated' },
};

const USAGE = 'edgefed certs dev --out DIR [--host NAME[,NAME...]] [--days 30] [--force]';
const SUMMARY = 'Writes a development CA (ca.pem, ca-key.pem), a server certificate for localhost, 127.0.0.1 and ::1\n(server.pem, server-key.pem) and a client certificate for mutual TLS (client.pem, client-key.pem).\nKeys are written with mode 0600. For trying TLS only: never trust this CA in production.';

/** Every file `certs dev` writes, by role. */
export const DEV_CERT_FILES = {
  ca: 'ca.pem',
  caKey: 'ca-key.pem',
  server: 'server.pem',
  serverKey: 'server-key.pem',
  client: 'client.pem',
  clientKey: 'client-key.pem',
} as const;

const KEY_FILES: ReadonlySet<string> = new Set([DEV_CERT_FILES.caKey, DEV_CERT_FILES.serverKey, DEV_CERT_FILES.clientKey]);

/** The names a server certificate must carry for clients connecting to this machine by name or loopback address. */
export const SERVER_ALT_NAMES = 'DNS:localhost, IP:127.0.0.1, IP:::1';

/** The server certificate's names: the loopback ones, then `--host` names (DNS or IP). */
export function serverAltNames(hosts: readonly string[] = []): string {
  return [SERVER_ALT_NAMES, ...hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`))].join(', ');
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function checkHost(h: string): string {
  if (isIP(h) || HOST_NAME.test(h)) return h;
  throw new CliError(`edgefed certs dev: --host "${h}" is neither a DNS name nor an IP address`);
}

// One config for every step, so the result does not depend on the system's openssl.cnf.
const opensslConfig = (altNames: string): string => `[req]
distinguished_name = dn
prompt = no
[dn]
CN = edgefed
[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${altNames}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

// P-256: fast to generate, and every TLS stack (mosquitto, mqtt.js, browsers) speaks it.
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface DevCertOptions {
  outDir: string;
  days: number;
  /** Replace files of an earlier run instead of refusing. */
  force?: boolean;
  /** More names for the server certificate (`--host`), besides localhost, 127.0.0.1 and ::1. */
  hosts?: string[];
}

export async function runCerts(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { flags, positionals } = parseFlags('certs', argv, SPECS, env);
  if (flags.help === true) {
    process.stdout.write(helpText(USAGE, SUMMARY, SPECS));
    return 0;
  }
  if (positionals[0] !== 'dev' || positionals.length > 1) {
    throw new CliError(`edgefed certs: the only subcommand is "dev", got ${positionals.length ? `"${positionals.join(' ')}"` : 'none'}. Usage: ${USAGE}`);
  }
  const out = str(flags, 'out');
  if (out === undefined || out === '') throw new CliError(`edgefed certs dev: --out DIR is required. Usage: ${USAGE}`);
  const outDir = path.resolve(out);
  const hosts = list(flags, 'host').map(checkHost);
  await generateDevCerts({ outDir, days: int(flags, 'days', { min: 1, max: 3650 }) ?? 30, force: flags.force === true, hosts });
  process.stdout.write(nextSteps(outDir));
  return 0;
}

/**
 * Writes the files of DEV_CERT_FILES into `outDir`. They are made in a private
 * temporary directory inside it and moved in at the end, so a key is never
 * readable by others, not even for a moment, and a failed run leaves no half set.
 */
export async function generateDevCerts(opts: DevCertOptions): Promise<void> {
  await fs.mkdir(opts.outDir, { recursive: true, mode: 0o700 });
  if (!opts.force) await refuseOverwrite(opts.outDir);
  const work = await fs.mkdtemp(path.join(opts.outDir, '.edgefed-certs-'));
  try {
    await fs.writeFile(path.join(work, 'openssl.cnf'), opensslConfig(serverAltNames(opts.hosts)));
    await makeCa(work, opts.days);
    await makeLeaf(work, opts.days, 'server', 'localhost', 'server_ext');
    await makeLeaf(work, opts.days, 'client', 'edgefed-dev-client', 'client_ext');
    await moveInto(work, opts.outDir);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

async function refuseOverwrite(outDir: string): Promise<void> {
  const present: string[] = [];
  for (const name of Object.values(DEV_CERT_FILES)) {
    if (await fs.stat(path.join(outDir, name)).then(() => true, () => false)) present.push(name);
  }
  if (present.length > 0) {
    throw new CliError(`edgefed certs dev: ${outDir} already holds ${present.join(', ')}; pass --force to replace them, or choose another --out`, 1);
  }
}

function makeCa(work: string, days: number): Promise<void> {
  return openssl(work, [
    'req', '-x509', '-config', 'openssl.cnf', '-extensions', 'ca_ext', ...NEW_KEY,
    '-subj', '/CN=edgefed dev CA', '-days', String(days), '-set_serial', serial(),
    '-keyout', DEV_CERT_FILES.caKey, '-out', DEV_CERT_FILES.ca,
  ]);
}

/** A key and a certificate signed by the CA: a CSR first, then the CA's signature with `extensions` from the config. */
async function makeLeaf(work: string, days: number, role: 'server' | 'client', commonName: string, extensions: string): Promise<void> {
  const csr = `${role}.csr`;
  await openssl(work, ['req', '-new', '-config', 'openssl.cnf', ...NEW_KEY, '-subj', `/CN=${commonName}`, '-keyout', `${role}-key.pem`, '-out', csr]);
  await openssl(work, [
    'x509', '-req', '-in', csr, '-CA', DEV_CERT_FILES.ca, '-CAkey', DEV_CERT_FILES.caKey,
    // An explicit serial: no .srl file next to the CA.
    '-set_serial', serial(), '-days', String(days),
    '-extfile', 'openssl.cnf', '-extensions', extensions, '-out', `${role}.pem`,
  ]);
}

async function moveInto(work: string, outDir: string): Promise<void> {
  for (const name of Object.values(DEV_CERT_FILES)) {
    const from = path.join(work, name);
    await fs.chmod(from, KEY_FILES.has(name) ? 0o600 : 0o644);
    await fs.rename(from, path.join(outDir, name));
  }
}

/** A random positive 64-bit serial: two runs must not issue the same serial under one CA name. */
function serial(): string {
  const bytes = randomBytes(8);
  bytes[0] = bytes[0]! & 0x7f;
  return `0x${bytes.toString('hex')}`;
}

function openssl(cwd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: 30_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new CliError('edgefed certs dev: openssl not found on PATH. Install it (Debian/Ubuntu: apt-get install openssl) and run again', 1));
      }
      const detail = stderr.trim().split('\n').slice(-3).join(' | ');
      reject(new CliError(`edgefed certs dev: openssl ${args[0] ?? ''} failed: ${detail || error.message}`, 1));
    });
  });
}

function nextSteps(outDir: string): string {
  const f = (name: string) => path.join(outDir, name);
  return [
    `Wrote ${Object.values(DEV_CERT_FILES).join(', ')} to ${outDir} (keys mode 0600).`,
    'Try it:',
    `  edgefed start --tls-cert ${f(DEV_CERT_FILES.server)} --tls-key ${f(DEV_CERT_FILES.serverKey)}`,
    `  mosquitto_sub --cafile ${f(DEV_CERT_FILES.ca)} -h localhost -p 8883 -t 'edgefed/#' -v`,
    `Mutual TLS: add --tls-ca ${f(DEV_CERT_FILES.ca)} to start; clients then need --cert ${f(DEV_CERT_FILES.client)} --key ${f(DEV_CERT_FILES.clientKey)}.`,
    'Development only: anyone holding ca-key.pem can issue certificates this CA vouches for.',
    '',
  ].join('\n');
}
