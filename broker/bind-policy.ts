import { isIPv4, isIPv6 } from 'node:net';
import { EdgefedError } from '../lib/errors.js';

/**
 * Where the broker may listen. As mosquitto 2.0 does: without authentication
 * it serves the local machine only, because an open broker on a network lets
 * anyone register nodes and read every work package.
 */

export interface BindRequest {
  host: string;
  /** True when an `auth` config or an `authenticate` hook is supplied. */
  authConfigured: boolean;
  /** The operator's explicit opt-out (`--insecure`). */
  insecure: boolean;
}

export const INSECURE_BIND_CODE = 'EDGEFED_ERR_INSECURE_BIND';

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and the name `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const name = host.trim().toLowerCase();
  if (name === 'localhost') return true;
  if (isIPv4(name)) return name.startsWith('127.');
  if (!isIPv6(name)) return false;
  if (name === '::1' || name === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(name);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

/** Throws an actionable EDGEFED_ERR_INSECURE_BIND error when the bind would expose an open broker. */
export function assertBindAllowed(request: BindRequest): void {
  if (request.authConfigured || request.insecure || isLoopbackHost(request.host)) return;
  throw new EdgefedError(INSECURE_BIND_CODE,
    `refusing to listen on "${request.host}" without authentication: ` +
      'anyone who can reach it could read and publish every topic. ' +
      'Configure auth, bind to a loopback address (127.0.0.1), ' +
      'or pass --insecure (insecure: true) if the network is trusted.',
  );
}
