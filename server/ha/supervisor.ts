/**
 * Active/standby hubs on one PostgreSQL store (issue 14). Every hub process
 * runs a supervisor: it takes the lease when it is free (becoming active: a
 * Hub is created, loads the store and takes the hub's MQTT session) and
 * renews it every `renewMs`; otherwise it is a standby serving reads from
 * the store. An active hub that cannot renew in time, or whose write was
 * fenced, steps down at once: it abandons the session and the store
 * without a last word, and becomes a standby.
 *
 * Its own clock decides when it may no longer act: `mayAct()` turns false
 * `ttlMs - marginMs` after the last renewal was *sent*, so a hub paused
 * past its lease (SIGSTOP, a VM freeze) neither publishes nor reconnects
 * when it wakes, before any of its timers has had a chance to ask the
 * database. The database's clock decides the lease itself.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../lib/log.js';
import type { Hub } from '../../hub/hub.js';
import { HubObservers } from '../../hub/observe.js';
import type { LeaseHolder, LeaseInfo } from '../../hub/store/pg/lease.js';
import { PgStore } from '../../hub/store/pg/store.js';
import type { StoreStatus } from '../../hub/store/health.js';
import { StandbyView } from './standby-view.js';
import { switchingApi, type SwitchingHubApi } from './switching-api.js';

export interface HaOptions {
  url: string;
  /** This hub's name in the lease and in `hub/status`. */
  hubId: string;
  /** Lease time to live (default 10 s). */
  ttlMs?: number;
  /** Renewal period of the active hub, and how often a standby tries to take the lease (default 3 s). */
  renewMs?: number;
  /** The active hub stops acting this long before its lease ends on its own clock (default 1 s). */
  marginMs?: number;
  log: Logger;
  /** Builds the hub that acts under a lease: its store is fenced by `epoch`. */
  createHub(o: { store: PgStore; mayAct: () => boolean; events: HubObservers; lease: { hubId: string; epoch: number } }): Hub;
}

export type HaRole = 'active' | 'standby';

export interface HaStatus {
  role: HaRole;
  hub_id: string;
  /** This hub's epoch while active, else null. */
  epoch: number | null;
  /** The lease holder as last read (who is active). */
  active: { hub_id: string; epoch: number; api_url: string | null } | null;
}

export class HubSupervisor {
  readonly events = new HubObservers();
  readonly api: SwitchingHubApi;
  readonly #o: Required<Omit<HaOptions, 'createHub' | 'log'>> & Pick<HaOptions, 'createHub' | 'log'>;
  readonly #control: PgStore;
  readonly #standby: StandbyView;
  #hub: Hub | undefined;
  #epoch: number | null = null;
  #validUntil = 0;
  #lastLease: LeaseHolder | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #stopped = false;
  #apiUrl: string | undefined;

  constructor(o: HaOptions) {
    this.#o = { ttlMs: 10_000, renewMs: 3000, marginMs: 1000, ...o };
    this.#control = new PgStore({ url: o.url, maxConnections: 2, onIdleError: (err) => o.log.warn({ code: err.code }, 'lease connection dropped') });
    this.#standby = new StandbyView(`standby-${o.hubId}`, o.log.child({ component: 'standby' }), this.events, {
      load: () => this.#control.load(),
      active: () => this.#lastLease,
      status: () => this.#controlStatus(),
    });
    this.api = switchingApi(this.#standby);
  }

  /** Active once its hub has started and the API serves it (the hub acts from its start on: mayAct). */
  get role(): HaRole { return this.#hub && this.api.target === this.#hub ? 'active' : 'standby'; }

  /** The hub acting under this process's lease, if any. */
  get activeHub(): Hub | undefined { return this.#hub; }

  /** Whether the active hub may still publish and write: its lease has not run out on its own clock. */
  readonly mayAct = (): boolean => this.#hub !== undefined && performance.now() < this.#validUntil;

  /** The API's own URL, which standbys give clients for writes (set once the HTTP server listens). */
  setApiUrl(url: string): void {
    this.#apiUrl = url;
    if (this.#lastLease?.holder === this.#o.hubId) this.#lastLease.info = this.#info();
  }

  status(): HaStatus {
    const l = this.#lastLease;
    return {
      role: this.role, hub_id: this.#o.hubId, epoch: this.#epoch,
      active: l && l.expires_in_ms > 0 ? { hub_id: l.holder, epoch: l.epoch, api_url: l.info.api_url ?? null } : null,
    };
  }

  /** Creates the tables, then takes the lease or starts as a standby; resolves either way. */
  async start(): Promise<void> {
    await this.#control.prepare();
    await this.#tick();
    if (!this.#hub) await this.#standby.start();
    this.#arm();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#ticking;
    this.#standby.stop();
    const hub = this.#hub;
    const epoch = this.#epoch;
    if (hub && epoch !== null) {
      await hub.stop(); // a clean goodbye: flushed, then the session left
      // Released, a standby takes over at its next try instead of after the TTL.
      await this.#control.lease.release(this.#o.hubId, epoch).catch((err: Error) => this.#o.log.warn({ err: err.message }, 'could not release the lease'));
    }
    this.#hub = undefined;
    await this.#control.close();
  }

  #arm(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => { this.#ticking = undefined; this.#arm(); });
    }, this.#o.renewMs);
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    if (this.#hub) await this.#renew();
    else await this.#tryTakeOver();
  }

  async #renew(): Promise<void> {
    const sentAt = performance.now();
    try {
      if (await this.#control.lease.renew(this.#o.hubId, this.#epoch!, this.#o.ttlMs, this.#info())) {
        this.#validUntil = sentAt + this.#o.ttlMs - this.#o.marginMs;
        return;
      }
      await this.#stepDown('another hub holds the lease now');
    } catch (err) {
      if (performance.now() >= this.#validUntil) await this.#stepDown(`the lease could not be renewed in time (${(err as Error).message})`);
      else this.#o.log.warn({ err: (err as Error).message }, 'lease renewal failed; retrying while the lease lasts');
    }
  }

  async #tryTakeOver(): Promise<void> {
    const sentAt = performance.now();
    let got;
    try {
      got = await this.#control.lease.acquire(this.#o.hubId, this.#o.ttlMs, this.#info());
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message }, 'standby could not reach the lease');
      return;
    }
    if (!got.acquired) { this.#lastLease = got.current; return; }
    this.#validUntil = sentAt + this.#o.ttlMs - this.#o.marginMs;
    await this.#becomeActive(got.epoch);
  }

  async #becomeActive(epoch: number): Promise<void> {
    const t0 = Date.now();
    this.#epoch = epoch;
    this.#lastLease = { holder: this.#o.hubId, epoch, expires_in_ms: this.#o.ttlMs, info: this.#info() };
    const store = new PgStore({ url: this.#o.url, onIdleError: (err) => this.#o.log.warn({ code: err.code }, 'store connection dropped') });
    store.fence(epoch, () => void this.#stepDown('a write was fenced: another hub took the lease'));
    const hub = this.#o.createHub({ store, mayAct: this.mayAct, events: this.events, lease: { hubId: this.#o.hubId, epoch } });
    this.#hub = hub;
    this.#standby.stop();
    try {
      await hub.start();
    } catch (err) {
      this.#o.log.error({ err: (err as Error).message, epoch }, 'the hub could not start under its lease; standing by');
      this.#hub = undefined;
      this.#epoch = null;
      await hub.abandon();
      await this.#control.lease.release(this.#o.hubId, epoch).catch(() => undefined);
      await this.#standby.start();
      return;
    }
    this.api.switchTo(hub);
    this.#o.log.info({ hub_id: this.#o.hubId, epoch, took_ms: Date.now() - t0 }, 'this hub is active');
  }

  async #stepDown(reason: string): Promise<void> {
    const hub = this.#hub;
    if (!hub) return;
    this.#hub = undefined;
    this.#o.log.error({ hub_id: this.#o.hubId, epoch: this.#epoch, reason }, 'this hub lost its lease: it stops acting and stands by');
    this.#epoch = null;
    this.api.switchTo(this.#standby);
    await hub.abandon();
    if (!this.#stopped) await this.#standby.start().catch(() => undefined);
  }

  /** What standbys tell clients about this hub while it is active. */
  #info(): LeaseInfo { return this.#apiUrl ? { api_url: this.#apiUrl } : {}; }

  #controlStatus(): StoreStatus {
    return { kind: 'postgres', location: this.#control.describe.location, state: 'up', down_since: null, last_error: null, failures: 0 };
  }
}
