/**
 * Identifiers of the wire contract: node ids, capability names and WPK ids.
 * They become MQTT topic levels, so they may never hold `/ + # $`, spaces or NUL.
 */
export const ID_PATTERN_SOURCE = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
export const ID_PATTERN = new RegExp(ID_PATTERN_SOURCE);
export const MAX_CAPABILITIES = 32;

export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}
