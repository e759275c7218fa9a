import type { AedesOptions } from 'aedes';
import type { AuthorizePublishHook, ResolvedBrokerOptions } from './options.js';
import type { AedesPersistence } from 'aedes-persistence';
import { indexedMemoryPersistence } from './retained-index.js';

/**
 * Maps our options onto aedes's. Hooks left undefined keep aedes's defaults
 * (accept everything except client publishes to `$SYS/`).
 */

/** Topics under `$SYS/` carry broker state (heartbeats, client lists); clients may never forge them. */
export const SYS_PREFIX = '$SYS/';

/**
 * Supplying authorizePublish replaces aedes's default, which is the only
 * thing refusing client publishes to `$SYS/`; keep that rule in front.
 */
export function keepSysReserved(authorize: AuthorizePublishHook): AuthorizePublishHook {
  return function authorizePublishOutsideSys(client, packet, callback) {
    if (packet.topic.startsWith(SYS_PREFIX)) {
      callback(new Error(`${SYS_PREFIX} topics are reserved for the broker`));
      return;
    }
    authorize(client, packet, callback);
  };
}

export function toAedesOptions(options: ResolvedBrokerOptions, persistence: AedesPersistence = indexedMemoryPersistence()): AedesOptions {
  const aedesOptions: AedesOptions = {
    heartbeatInterval: options.heartbeatIntervalMs,
    connectTimeout: options.connectTimeoutMs,
    concurrency: options.busConcurrency,
    persistence,
  };
  if (options.authenticate) aedesOptions.authenticate = options.authenticate;
  if (options.authorizePublish) aedesOptions.authorizePublish = keepSysReserved(options.authorizePublish);
  if (options.authorizeSubscribe) aedesOptions.authorizeSubscribe = options.authorizeSubscribe;
  if (options.authorizeForward) aedesOptions.authorizeForward = options.authorizeForward;
  return aedesOptions;
}
