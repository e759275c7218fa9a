/**
 * Identifiers of the wire contract: node ids, capability names and WPK ids.
 * They become MQTT topic levels, so they may never hold `/ + # $`, spaces or NUL.
 */
import { MAX_ID_LENGTH } from './limits.js';

export const ID_PATTERN_SOURCE = `^[A-Za-z0-9][A-Za-z0-9._-]{0,${MAX_ID_LENGTH - 1}}$`;
export const ID_PATTERN = new RegExp(ID_PATTERN_SOURCE);
/** Kept here for the modules that imported it from lib/ids before lib/limits existed. */
export { MAX_CAPABILITIES } from './limits.js';

export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}
