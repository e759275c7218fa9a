/**
 * Parsing an untrusted payload that must be a JSON object, as every payload
 * of the contract is. One function for the hub's admission, the HTTP API, the
 * broker's ACL and the agent, so "not JSON" and "not an object" read the same
 * everywhere. No dependencies: the agent loads it too.
 */
export type ObjectParse =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; code: 'not_json' | 'not_object'; reason: string };

export function parseObject(payload: Buffer | string): ObjectParse {
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    return { ok: false, code: 'not_json', reason: `payload is not JSON (${(err as Error).message})` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const kind = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    return { ok: false, code: 'not_object', reason: `payload must be a JSON object, got ${kind}` };
  }
  return { ok: true, value: value as Record<string, unknown> };
}
