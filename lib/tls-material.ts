/**
 * The PEM material of a TLS listener (the broker's mqtts listener and the
 * HTTPS API share it), checked once before any socket is opened so that a
 * wrong file fails `start` with the field at fault instead of a bare OpenSSL
 * message on the first handshake.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type TlsOptions } from 'node:tls';
import { EdgefedError } from './errors.js';

export const TLS_ERROR_CODE = 'EDGEFED_ERR_TLS';

export interface TlsMaterial {
  /** PEM server certificate, optionally followed by its intermediate chain. */
  cert: string | Buffer;
  /** PEM private key of `cert` (unencrypted). */
  key: string | Buffer;
  /**
   * PEM CA certificate(s). Setting it turns on mutual TLS: every client must
   * present a certificate signed by one of these, or the handshake fails.
   */
  ca?: string | Buffer;
}

export type TlsField = keyof TlsMaterial;

/** A TLS option that cannot work; `field` says which, so the CLI can name its flag. */
export class TlsMaterialError extends EdgefedError {
  override readonly name = 'TlsMaterialError';
  constructor(readonly field: TlsField, readonly problem: string) {
    super(TLS_ERROR_CODE, `tls.${field} ${problem}`);
  }
}

/**
 * Validates `material` and returns the server options for node:tls / node:https.
 * Mutual TLS (a `ca`) both asks for a client certificate and refuses a
 * connection without a valid one: asking without refusing would let anyone in.
 */
export function serverTlsOptions(material: TlsMaterial): TlsOptions {
  checkCertificates('cert', material.cert);
  checkKey(material.key);
  if (material.ca !== undefined) checkCertificates('ca', material.ca);
  const mutual = material.ca !== undefined;
  const options: TlsOptions = {
    cert: material.cert,
    key: material.key,
    ...(mutual ? { ca: material.ca } : {}),
    requestCert: mutual,
    rejectUnauthorized: mutual,
  };
  try {
    createSecureContext(options);
  } catch (err) {
    // Each part parsed alone, so what is left is that they do not belong together.
    throw new TlsMaterialError('key', `does not match the certificate (${(err as Error).message})`);
  }
  return options;
}

function checkCertificates(field: 'cert' | 'ca', pem: string | Buffer): void {
  if (!looksLikePem(pem, 'CERTIFICATE')) throw new TlsMaterialError(field, 'is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new TlsMaterialError(field, `is not a readable PEM certificate (${(err as Error).message})`);
  }
  // An expired certificate would only show up as refused handshakes on every client.
  if (Date.parse(cert.validTo) < Date.now()) throw new TlsMaterialError(field, `expired on ${cert.validTo}`);
}

function checkKey(pem: string | Buffer): void {
  if (!looksLikePem(pem, 'PRIVATE KEY')) throw new TlsMaterialError('key', 'is not a PEM private key (no "-----BEGIN ... PRIVATE KEY-----" block)');
  try {
    createPrivateKey(pem);
  } catch (err) {
    throw new TlsMaterialError('key', `is not a readable unencrypted PEM private key (${(err as Error).message})`);
  }
}

function looksLikePem(pem: string | Buffer, label: string): boolean {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  return new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text);
}
