/**
 * The hub, the domain core: the node registry, presence and work packages.
 * Process wiring, HTTP, the live feed and metrics live in server/ above it.
 */
export { createHub, defaultHubOptions, Hub, type HubOptions } from './hub.js';
export type { CountersSnapshot, HubApi, NodeFilter } from './api.js';
export type { NodePage, PageRequest } from './node-index.js';
export type { NodeRecord, NodeState } from './registry.js';
export type { HubCounters } from './counters.js';
export type { WorkPackages, WpkRecord, WpkState, ExecutionRecord, WpkListFilter } from './wpk/types.js';
export { WpkRequestError } from './wpk/types.js';
export type { WpkOptions } from './wpk/service.js';
export { hubClientId } from './link.js';
export type { HubTransport, LinkSetup, OpenHubTransport } from './transport.js';
