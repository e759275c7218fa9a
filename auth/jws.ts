/**
 * The compact JWS of a JWT, taken apart only as far as verification needs:
 * the header (for `alg`, `kid`, `crit`), the exact bytes that were signed, and
 * the signature. The payload stays encoded until the signature is checked
 * (`decodePayload`): nothing an attacker wrote is parsed as JSON before that
 * but the small header.
 *
 * Refusals follow jose's `jwtVerify` (RFC 7515, RFC 7519) code for code,
 * with two places stricter than jose on Node 20: base64url (jose goes through
 * `atob`, which skips whitespace, takes `=` padding and ignores non-zero
 * padding bits: here only the one canonical, unpadded encoding of each part
 * is accepted), and duplicate names in `crit` (RFC 7515 section 4.1.11 says
 * producers must not list any; jose lets them through).
 */
import { TokenError } from './types.js';

/** Header parameters this verifier understands when a token lists them in `crit` (RFC 7515 section 4.1.11). */
const RECOGNIZED_CRIT: ReadonlySet<string> = new Set(['b64']);

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A compact JWS split in its parts; only the header is decoded, and nothing in it is trusted yet. */
export interface CompactJws {
  /** The protected header, a JSON object with a string `alg`. */
  header: Readonly<Record<string, unknown>> & { alg: string; kid?: unknown };
  /** The header part, still base64url. */
  headerPart: string;
  /** `BASE64URL(header) "." BASE64URL(payload)`: what the signature covers. */
  signedPart: string;
  /** The payload part, still base64url. */
  payload: string;
  /** The signature part, still base64url. */
  signaturePart: string;
}

/** Three parts and a header that is a JSON object with an `alg`; throws `malformed` otherwise. */
export function splitCompactJws(token: string): CompactJws {
  const dot1 = token.indexOf('.');
  const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
  if (dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) throw malformed('not a compact JWS (three base64url parts)');
  const headerPart = token.slice(0, dot1);
  return { header: parseHeader(headerPart), headerPart, signedPart: token.slice(0, dot2), payload: token.slice(dot1 + 1, dot2), signaturePart: token.slice(dot2 + 1) };
}

/** The bytes to verify and the signature; `malformed` unless both parts are canonical base64url. */
export function signedBytes(jws: CompactJws): { signingInput: Buffer; signature: Buffer } {
  const signature = decodeBase64url(jws.signaturePart);
  if (signature === undefined || !isBase64url(jws.payload)) throw malformed('not a well-formed JWT');
  // Every character is base64url (ASCII) now, so latin1 copies the string byte for byte.
  return { signingInput: Buffer.from(jws.signedPart, 'latin1'), signature };
}

/** The claims set of a verified token: a JSON object, or `malformed`. */
export function decodePayload(payload: string): Record<string, unknown> {
  const bytes = decodeBase64url(payload);
  const claims = bytes === undefined ? undefined : parseJsonObject(bytes);
  if (claims === undefined) throw malformed('not a well-formed JWT'); // jose: "JWT Claims Set must be a top-level JSON object"
  return claims;
}

function parseHeader(part: string): CompactJws['header'] {
  const bytes = decodeBase64url(part);
  const header = bytes === undefined ? undefined : parseJsonObject(bytes);
  if (header === undefined) throw malformed('the header is not base64url JSON');
  if (typeof header['alg'] !== 'string') throw malformed('the header has no "alg"');
  return header as CompactJws['header'];
}

/**
 * RFC 7515 section 4.1.11: a token that makes a header parameter critical
 * must be refused by a verifier that does not understand it. `b64` (RFC 7797)
 * is understood, and a JWT must keep it true: an unencoded payload is no JWT.
 */
export function checkCrit(header: Readonly<Record<string, unknown>>): void {
  const crit = header['crit'];
  if (crit === undefined) return;
  if (!Array.isArray(crit) || crit.length === 0 || crit.some((p) => typeof p !== 'string' || p.length === 0) || new Set(crit).size !== crit.length) {
    throw malformed('"crit" must be an array of distinct header parameter names');
  }
  for (const parameter of crit as string[]) {
    if (!RECOGNIZED_CRIT.has(parameter)) throw new TokenError('bad_algorithm', 'algorithm or header not accepted');
    if (header[parameter] === undefined) throw malformed(`the critical header parameter "${parameter}" is missing`);
  }
  if (crit.includes('b64') && header['b64'] !== true) throw malformed('not a well-formed JWT'); // jose: "JWTs MUST NOT use unencoded payload"
}

/** The bytes of a canonical unpadded base64url string, or undefined for anything else. */
export function decodeBase64url(text: string): Buffer | undefined {
  if (!isBase64url(text)) return undefined;
  // Buffer's decoder skips what it does not understand: only canonical input may reach it.
  return Buffer.from(text, 'base64url');
}

/**
 * RFC 4648 section 3.5: the bits after the last whole byte must be zero, so
 * that one byte string has exactly one encoding (a "non-canonical" signature
 * would otherwise verify under another token string).
 */
function isBase64url(text: string): boolean {
  const rest = text.length % 4;
  if (rest === 1 || !BASE64URL.test(text)) return false;
  if (rest === 0) return true;
  const last = ALPHABET.indexOf(text[text.length - 1]!);
  const unusedBits = rest === 2 ? 0b1111 : 0b11;
  return (last & unusedBits) === 0;
}

function parseJsonObject(bytes: Buffer): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function malformed(message: string): TokenError {
  return new TokenError('malformed', message);
}
