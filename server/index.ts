/**
 * The server layer: process wiring (`startFederation`: the embedded broker or
 * an external one, the hub, the HTTP API), the HTTP API, the dashboard's live
 * feed and /metrics. It stands above hub/ and broker/ and reads the hub only
 * through `HubApi`.
 */
export { startFederation, type Federation, type FederationOptions } from './federation.js';
export { startHttpApi, type HttpApi, type HttpApiOptions } from './http/server.js';
export type { BrokerView } from './metrics/broker.js';
export { inProcessTransport } from './in-process-link.js';
