/**
 * `edgefed`: the whole federation as a library. Constrained devices import
 * `edgefed/agent` alone, which loads neither the broker nor the hub.
 */
export { startFederation, type Federation, type FederationOptions } from './server/index.js';
export { createHub, Hub, type HubOptions, type NodeRecord, type NodeState } from './hub/index.js';
export { createBroker, type BrokerOptions, type EdgefedBroker } from './broker/index.js';
export { startAgent, type Agent, type AgentOptions } from './agent/index.js';
export { topics, DEFAULT_TOPIC_ROOT, type Topics, type ParsedTopic } from './lib/topics.js';
export { validators } from './schemas/index.js';
export type * from './lib/wire.js';
/** The HTTP API's answers and the live feed's events (docs/api.md). */
export type * from './lib/api.js';
export { NODE_STATES, WPK_STATES, FINAL_WPK_STATES } from './lib/states.js';
export * from './lib/limits.js';
export { VERSION } from './lib/version.js';
