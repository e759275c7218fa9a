/**
 * One HubApi for the HTTP server, the feed and metrics, whatever this
 * process is now: the active Hub, or the standby's view of the store. They
 * are built once against it; a takeover or a step-down switches what it
 * reads. Both sides share one HubObservers, so subscriptions survive.
 */
import type { HubApi } from '../../hub/api.js';

export interface SwitchingHubApi extends HubApi {
  switchTo(target: HubApi): void;
  readonly target: HubApi;
}

export function switchingApi(initial: HubApi): SwitchingHubApi {
  let t = initial;
  return {
    switchTo(target) { t = target; },
    get target() { return t; },
    get bootId() { return t.bootId; },
    get startedAt() { return t.startedAt; },
    get connected() { return t.connected; },
    get registryFile() { return t.registryFile; },
    get log() { return t.log; },
    get events() { return t.events; },
    get wpks() { return t.wpks; },
    nodes: (filter) => t.nodes(filter),
    nodePage: (filter, page) => t.nodePage(filter, page),
    eachNode: () => t.eachNode(),
    node: (id) => t.node(id),
    countNodesByStatus: () => t.countNodesByStatus(),
    storeStatus: () => t.storeStatus(),
    counters: () => t.counters(),
    register: (body) => t.register(body),
    heartbeat: (id, body) => t.heartbeat(id, body),
    refuse: (report) => t.refuse(report),
    removeNode: (id) => t.removeNode(id),
    nodeState: (id) => t.nodeState(id),
    patchDesired: (id, patch, ifVersion) => t.patchDesired(id, patch, ifVersion),
    countOutOfSync: () => t.countOutOfSync(),
  };
}
