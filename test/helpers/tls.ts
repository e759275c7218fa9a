/**
 * TLS fixtures: one set of dev certificates per test file (made by
 * `generateDevCerts`, i.e. the openssl binary, as `edgefed certs dev` does),
 * and clients that report how a TLS connection ended instead of throwing.
 */
import fs from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { DEV_CERT_FILES, generateDevCerts } from '../../cli/certs.js';
import { withTimeout } from './time.js';

export interface DevCerts {
  dir: string;
  ca: Buffer;
  server: Buffer;
  serverKey: Buffer;
  client: Buffer;
  clientKey: Buffer;
  remove(): Promise<void>;
}

export async function devCerts(days = 1): Promise<DevCerts> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-tls-'));
  await generateDevCerts({ outDir: dir, days });
  const read = (name: string) => fs.readFile(path.join(dir, name));
  return {
    dir,
    ca: await read(DEV_CERT_FILES.ca),
    server: await read(DEV_CERT_FILES.server),
    serverKey: await read(DEV_CERT_FILES.serverKey),
    client: await read(DEV_CERT_FILES.client),
    clientKey: await read(DEV_CERT_FILES.clientKey),
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/** How an attempt to connect ended: the client (connected), or the error / close that refused it. */
export type Attempt = { ok: true; client: MqttClient } | { ok: false; reason: string };

/**
 * Connects once (no reconnect). A refusal in the TLS handshake arrives as
 * 'error'; with TLS 1.3 a refused client certificate may arrive after the
 * client thinks the handshake is done, as an alert or a bare close.
 */
export async function tryConnect(url: string, options: IClientOptions, timeoutMs = 3000): Promise<Attempt> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: timeoutMs, ...options });
  const outcome = await withTimeout(new Promise<Attempt>((resolve) => {
    client.once('connect', () => resolve({ ok: true, client }));
    client.once('error', (err) => resolve({ ok: false, reason: 'code' in err && err.code !== undefined ? String(err.code) : err.message }));
    client.once('close', () => resolve({ ok: false, reason: 'closed' }));
  }), timeoutMs + 1000, `mqtts connect ${url}`).catch((err: Error) => ({ ok: false as const, reason: err.message }));
  if (!outcome.ok) client.end(true);
  return outcome;
}

export interface HttpsAnswer { status: number; body: string }

/** GET over HTTPS with node:https (global fetch takes no CA without an undici dispatcher). */
export function httpsGet(url: string, options: https.RequestOptions, timeoutMs = 3000): Promise<HttpsAnswer> {
  return withTimeout(new Promise<HttpsAnswer>((resolve, reject) => {
    // agent: false: no keep-alive socket left behind to hold the test process open.
    const req = https.get(url, { ...options, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url} timed out`)));
  }), timeoutMs + 500, `GET ${url}`);
}
