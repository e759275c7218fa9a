/**
 * Desired state's pure rules (issue 16), shared by the hub, the HTTP API, the
 * CLI and the agent: a JSON merge patch (RFC 7386), the delta between desired
 * and reported, and the size and depth bounds. No dependencies: the agent
 * loads it.
 */
import { MAX_STATE_BYTES, MAX_STATE_DEPTH } from './limits.js';

export type StateObject = { [key: string]: unknown };

function isObject(value: unknown): value is StateObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * RFC 7386 section 2: a patch that is not an object replaces the target; an
 * object patch merges key by key, `null` removing a key. Returns a new value;
 * neither argument is changed.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const result: StateObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** Deep equality of JSON values (object key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]));
}

/**
 * The desired keys whose reported value differs, with their desired values.
 * Nested objects are compared key by key, so the delta of `{a: {x: 1, y: 2}}`
 * against `{a: {x: 1}}` is `{a: {y: 2}}`; arrays and scalars compare whole.
 * Keys only the node reports are not part of the delta: nobody asked for them.
 */
export function stateDelta(desired: StateObject, reported: StateObject | null | undefined): StateObject {
  const delta: StateObject = {};
  for (const [key, want] of Object.entries(desired)) {
    const have = reported?.[key];
    if (isObject(want) && isObject(have)) {
      const inner = stateDelta(want, have);
      if (Object.keys(inner).length > 0) delta[key] = inner;
    } else if (!jsonEqual(want, have)) {
      delta[key] = structuredClone(want);
    }
  }
  return delta;
}

/** How deeply objects and arrays nest in a JSON value (a scalar is 0, `{}` is 1). */
export function jsonDepth(value: unknown, limit = Infinity, depth = 0): number {
  if (value === null || typeof value !== 'object') return depth;
  if (depth + 1 > limit) return depth + 1; // deep enough to refuse: stop walking
  let max = depth + 1;
  for (const child of Object.values(value as object)) max = Math.max(max, jsonDepth(child, limit, depth + 1));
  return max;
}

/** Why a state is out of bounds, or undefined when it is within them. */
export function stateBoundsProblem(state: StateObject, maxBytes = MAX_STATE_BYTES, maxDepth = MAX_STATE_DEPTH): string | undefined {
  const depth = jsonDepth(state, maxDepth);
  if (depth > maxDepth) return `state nests deeper than ${maxDepth} levels`;
  const bytes = Buffer.byteLength(JSON.stringify(state));
  if (bytes > maxBytes) return `state is ${bytes} bytes as JSON; the limit is ${maxBytes}`;
  return undefined;
}
