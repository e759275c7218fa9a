/**
 * The one error type of edgefed (as fastify's FST_ERR_* catalogue): every
 * error a caller can act on has a stable `code`, `EDGEFED_ERR_` and a name,
 * and a message that says what was wrong and what to do. Library users test
 * `err.code` (or `isEdgefedError(err, 'EDGEFED_ERR_X')`), never the message.
 * The message starts with the code, as logs and the CLI have always shown it;
 * `detail` is the same text without it (what the HTTP API answers as
 * `message` beside `code`).
 */
export type EdgefedErrorCode = `EDGEFED_ERR_${string}`;

export class EdgefedError extends Error {
  override readonly name: string = 'EdgefedError';
  /** The message without the leading code. */
  readonly detail: string;

  constructor(readonly code: EdgefedErrorCode, detail: string, options?: { cause?: unknown }) {
    super(`${code}: ${detail}`, options);
    this.detail = detail;
  }
}

/** True for an EdgefedError (of this code, when one is given). */
export function isEdgefedError(err: unknown, code?: EdgefedErrorCode): err is EdgefedError {
  return err instanceof EdgefedError && (code === undefined || err.code === code);
}
