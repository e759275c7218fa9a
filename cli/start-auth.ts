/**
 * The authentication flags of `edgefed start`: `--auth jwt` and where the
 * extra verification keys come from (a JWKS file, or a URL such as Vault's).
 */
import type { JwtAuthOptions } from '../server/federation-auth.js';
import { CliError, list, str, type Flags, type FlagSpecs } from './args.js';

export const AUTH_START_SPECS: FlagSpecs = {
  auth: { type: 'string', value: 'MODE', help: 'none (loopback dev mode) or jwt: every MQTT client and API call presents a JWT ("edgefed token issue")', default: 'none' },
  'jwks-file': { type: 'string', value: 'FILE', help: 'With --auth jwt: also accept tokens signed by the keys of this JWKS file' },
  'jwks-url': { type: 'string', value: 'URL', help: 'With --auth jwt: also accept tokens signed by the keys at this URL (Vault: /v1/identity/oidc/.well-known/keys)' },
  issuer: { type: 'string', value: 'ISS', help: 'With --auth jwt: tokens must carry this issuer' },
  audience: { type: 'string', value: 'AUD', help: 'With --auth jwt: tokens must carry this audience' },
  'jwks-alg': { type: 'string', value: 'LIST', help: 'With --jwks-file/--jwks-url: accepted algorithms (default EdDSA; Vault signs RS256)' },
};

/** `{ auth }` for startFederation, or `{}` with `--auth none`. Throws CliError naming the flag. */
export function authStartOptions(flags: Flags): { auth?: JwtAuthOptions } {
  const mode = str(flags, 'auth') ?? 'none';
  const extras = ['jwks-file', 'jwks-url', 'issuer', 'audience', 'jwks-alg'].filter((f) => str(flags, f) !== undefined);
  if (mode === 'none') {
    if (extras.length > 0) throw new CliError(`edgefed start: --${extras[0]} has no effect without --auth jwt`);
    return {};
  }
  if (mode !== 'jwt') throw new CliError(`edgefed start: --auth must be none or jwt, got "${mode}"`);
  const jwksFile = str(flags, 'jwks-file');
  const jwksUrl = str(flags, 'jwks-url');
  if (jwksFile !== undefined && jwksUrl !== undefined) throw new CliError('edgefed start: give --jwks-file or --jwks-url, not both');
  const algorithms = list(flags, 'jwks-alg');
  return {
    auth: {
      ...(jwksFile !== undefined ? { jwksFile } : {}),
      ...(jwksUrl !== undefined ? { jwksUrl } : {}),
      ...(str(flags, 'issuer') !== undefined ? { issuer: str(flags, 'issuer')! } : {}),
      ...(str(flags, 'audience') !== undefined ? { audience: str(flags, 'audience')! } : {}),
      ...(algorithms.length > 0 ? { algorithms } : {}),
    },
  };
}
