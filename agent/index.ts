/**
 * `edgefed/agent`: the edge agent. Loads only node builtins, mqtt and lib/
 * (no ajv, pino or broker code) so an idle agent stays small on a device;
 * bench/agent-rss.ts measures it.
 */
export { startAgent, type Agent, type AgentEventMap } from './agent.js';
export { AGENT_DEFAULTS, AgentConfigError, type AgentOptions } from './options.js';
export { backoffDelay, type BackoffPolicy } from './backoff.js';
export { AGENT_NAME } from './payloads.js';
export {
  BUILTIN_ACTIONS, MAX_SLEEP_MS, type ActionContext, type ActionHandler, type ActionMap, type ActionParams,
} from './actions.js';
export { ActionModuleError, loadActionModule } from './action-module.js';
export { DEFAULT_SPOOL_MAX } from './spool.js';
export { SPOOL_FILE } from './spool-file.js';
export { DESIRED_STATE_FILE, REPORTED_STATE_FILE, type DesiredContext, type DesiredHandler } from './desired.js';
export { loadStateHandler, StateHandlerModuleError } from './state-handler-module.js';
