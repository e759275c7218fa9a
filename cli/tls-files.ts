/**
 * Reads the PEM files named by TLS flags (`start --tls-*`, `agent --ca/--cert/--key`).
 * node:fs only: the agent loads this, and its memory budget has no room for more.
 */
import { readFileSync } from 'node:fs';
import { CliError } from './args.js';

export const TLS_FILE_CODE = 'EDGEFED_ERR_TLS_FILE';

/** The file's bytes; an unreadable or non-PEM file is a CliError naming the command, `--flag` and the file. */
export function readPem(file: string, flag: string, command: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new CliError(`edgefed ${command}: ${TLS_FILE_CODE}: --${flag} ${file}: ${why}`);
  }
  // DER or a mistyped path to some other file: say so here, not as an OpenSSL error on the first handshake.
  if (!data.includes('-----BEGIN ')) throw new CliError(`edgefed ${command}: ${TLS_FILE_CODE}: --${flag} ${file}: not a PEM file (no "-----BEGIN" line)`);
  return data;
}
