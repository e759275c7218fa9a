/** JSON responses and body reading for the HTTP API, with errors users can act on. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseObject } from '../../hub/admission.js';
import { EdgefedError, type EdgefedErrorCode } from '../../lib/errors.js';

export interface ApiError { code: string; message: string; details?: string[] }

/** An answer other than 2xx: the status, and the code and words the body carries. */
export class HttpError extends EdgefedError {
  override readonly name = 'HttpError';
  constructor(readonly status: number, code: EdgefedErrorCode, message: string, readonly details?: string[]) {
    super(code, message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  const error: ApiError = { code: err.code, message: err.detail };
  if (err.details) error.details = err.details;
  sendJson(res, err.status, { error });
}

/**
 * Reads a JSON object body up to `limit` bytes (an empty body reads as `{}`),
 * with the same JSON and object checks as MQTT payloads: not JSON is a 400,
 * JSON that is not an object a 422.
 */
export async function readJsonObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Read to the end even when over the limit (keeping nothing), so the client
  // gets the 413 with its reason instead of a reset connection.
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= limit) chunks.push(chunk as Buffer);
  }
  if (size > limit) throw new HttpError(413, 'EDGEFED_ERR_BODY_TOO_LARGE', `request body is ${size} bytes; the limit is ${limit}`);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  const parsed = parseObject(text);
  if (parsed.ok) return parsed.value;
  if (parsed.code === 'not_json') throw new HttpError(400, 'EDGEFED_ERR_BAD_JSON', `request body: ${parsed.reason}`);
  throw new HttpError(422, 'EDGEFED_ERR_SCHEMA', 'request body must be a JSON object', [parsed.reason]);
}
