/**
 * The edge agent: a Sparkplug-style birth/death lifecycle over MQTT.
 * Birth (registration + status online, retained) on every connect, death as
 * the Last Will (or an explicit shutdown status), heartbeats in between, and
 * the hub's commands. Work packages arrive on the trigger topics of this
 * node's capabilities and run in the executor (executor.ts); their updates
 * leave through the outbox (outbox.ts), which spools them while offline.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IClientPublishOptions, IConnackPacket, MqttClient } from 'mqtt';
import type { Logger } from '../lib/log.js';
import { topics, type Topics } from '../lib/topics.js';
import { actionTable } from './actions.js';
import { CommandDispatcher, parseHubStatus } from './commands.js';
import { ConnectErrors } from './connect-errors.js';
import { createClient } from './connection.js';
import { Executor } from './executor.js';
import { HeartbeatLoop } from './heartbeat.js';
import { resolveOptions, type AgentOptions, type ResolvedAgentOptions } from './options.js';
import { ExecutionOutbox } from './outbox.js';
import { heartbeatPayload, hostHardware, offlineStatus, onlineStatus, registrationPayload } from './payloads.js';
import { RecentFinals } from './recent-finals.js';
import { Spool } from './spool.js';
import { FileSpoolStore } from './spool-file.js';
import { disconnect } from '../lib/goodbye.js';
import { DesiredKeeper, type DesiredHandler } from './desired.js';

/** Events an agent emits; neither carries arguments. */
export interface AgentEventMap {
  /** Connected (or reconnected) to the broker; the birth messages are on their way. */
  connect: [];
  /** The connection to the broker closed; the agent keeps retrying unless stopped. */
  disconnect: [];
}

export interface Agent {
  readonly nodeId: string;
  /** Fresh for every `startAgent`: lets the hub tell a restart from a duplicate message. */
  readonly bootId: string;
  readonly connected: boolean;
  on<E extends keyof AgentEventMap>(event: E, listener: (...args: AgentEventMap[E]) => void): this;
  once<E extends keyof AgentEventMap>(event: E, listener: (...args: AgentEventMap[E]) => void): this;
  off<E extends keyof AgentEventMap>(event: E, listener: (...args: AgentEventMap[E]) => void): this;
  /**
   * Publishes status offline/shutdown, then disconnects cleanly (so the broker
   * drops the will). Bounded by `stopTimeoutMs`: past it the connection is cut
   * and the broker publishes the will instead. Idempotent; never rejects.
   */
  stop(): Promise<void>;
  /**
   * Sets the handler of this node's desired state (replacing `desiredHandler`):
   * `(state, delta, ctx) => reported`, run for each new version, one at a time.
   */
  onDesired(handler: DesiredHandler): this;
}

/**
 * Starts an agent. Resolves as soon as the client exists: connecting happens
 * in the background and is retried forever, so an agent may start before its
 * broker. Wait for the `connect` event (or check `connected`) if you need to.
 * Rejects with an `EDGEFED_ERR_AGENT_CONFIG: ...` error on invalid options.
 */
export async function startAgent(options: AgentOptions): Promise<Agent> {
  const agent = new EdgeAgent(resolveOptions(options));
  await agent.start();
  return agent;
}

const RETAINED_QOS1: IClientPublishOptions = { qos: 1, retain: true };
/** A rebirth this soon after re-announcing to a restarted hub is already answered (the hub's resync waits up to 5 s). */
const REBIRTH_QUIET_MS = 6000;

class EdgeAgent implements Agent {
  readonly nodeId: string;
  readonly bootId = newBootId();
  readonly commands: CommandDispatcher;

  private readonly events = new EventEmitter<AgentEventMap>();
  private readonly topics: Topics;
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private readonly hardware = hostHardware();
  private readonly heartbeat: HeartbeatLoop;
  private readonly capabilities: ReadonlySet<string>;
  private readonly executor: Executor;
  private readonly spool: Spool;
  private readonly outbox: ExecutionOutbox;
  private readonly finals: RecentFinals;
  private readonly desired: DesiredKeeper;
  private client: MqttClient | undefined;
  private seq = 0;
  private lastAnnounceTs = 0;
  /**
   * The CONNECT within this boot, counted as each one's will is built: the
   * `online` after a connect carries the number its will carries. On a broker
   * cluster the will of a dead broker node can arrive after this node
   * reconnected elsewhere; the hub ignores an `offline` of an older session.
   */
  private session = 0;
  /** Monotonic time of the last announcement (performance.now()). */
  private lastAnnounceAt = -Infinity;
  private lastAnnounceReason: 'connect' | 'rebirth' | 'hub-restart' | undefined;
  /** The hub session last seen online during this connection; a different one means the hub restarted. */
  private hubBootId: string | undefined;
  /**
   * The hub session that has our recent finals: unlike `hubBootId` it survives
   * our own reconnects, because an embedded broker dies with its hub, so a
   * hub restart usually looks to us like a lost connection.
   */
  private finalsHubBootId: string | undefined;
  private stopping: Promise<void> | undefined;
  /** mqtt.js emits 'close' after every failed attempt too; 'disconnect' is only the loss of a live session. */
  private up = false;
  /** Connection errors since the last successful connect. */
  private readonly connectErrors: ConnectErrors;

  constructor(private readonly opts: ResolvedAgentOptions) {
    this.nodeId = opts.nodeId;
    this.topics = topics(opts.topicRoot);
    this.log = opts.logger.child({ component: 'agent', node_id: opts.nodeId, boot_id: this.bootId });
    this.heartbeat = new HeartbeatLoop(opts.heartbeatIntervalMs, () => this.sendHeartbeat());
    this.connectErrors = new ConnectErrors({
      own: { nodeId: opts.nodeId, capabilities: opts.capabilities, username: opts.username, password: opts.password },
      log: this.log, policy: { minMs: opts.reconnectMinMs, maxMs: opts.reconnectMaxMs }, authRetryMs: opts.authRetryMs,
    });
    this.commands = new CommandDispatcher(this.log);
    this.commands.on('rebirth', () => {
      // A restarted hub sends rebirth to every node once it has resynchronised,
      // and the agent already re-announced on seeing it online: once is enough.
      if (this.lastAnnounceReason === 'hub-restart' && performance.now() - this.lastAnnounceAt < REBIRTH_QUIET_MS) return;
      this.announce('rebirth');
    });
    this.capabilities = new Set(opts.capabilities);
    this.spool = new Spool({
      nodeId: opts.nodeId,
      max: opts.spoolMax,
      log: this.log,
      store: opts.spoolDir === undefined ? undefined : new FileSpoolStore(opts.spoolDir),
    });
    this.outbox = new ExecutionOutbox(this.spool, this.topics, this.log);
    this.finals = new RecentFinals({ maxAgeMs: opts.replayFinalMs });
    this.executor = new Executor({
      nodeId: opts.nodeId,
      actions: actionTable(opts.actions),
      concurrency: opts.concurrency,
      log: this.log,
      send: (update) => {
        this.finals.record(update);
        this.outbox.send(update);
      },
    });
    this.desired = new DesiredKeeper({
      nodeId: opts.nodeId,
      log: this.log,
      dir: opts.spoolDir,
      handler: opts.desiredHandler,
      report: (report) => {
        const client = this.client;
        if (client && !this.stopping) this.publish(client, this.topics.reported(this.nodeId), report, RETAINED_QOS1);
      },
    });
    this.commands.on('cancel', (command) => {
      this.executor.cancel(command.wpk_id, command.attempt);
    });
  }

  get connected(): boolean {
    return this.client?.connected === true && !this.stopping;
  }

  async start(): Promise<void> {
    // Before the first connect, so what a previous run left is replayed ahead of anything new.
    this.spool.open();
    const willTopic = this.topics.status(this.nodeId);
    const client = await createClient(this.opts, {
      topic: willTopic,
      payload: () => JSON.stringify(offlineStatus(this.bootId, 'lost', Date.now(), ++this.session)),
    });
    this.client = client;
    client.on('connect', (connack) => this.onConnect(client, connack));
    client.on('close', () => this.onClose());
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    // Without an 'error' listener EventEmitter would throw; connection errors are routine here.
    client.on('error', (err) => this.onError(err));
    this.heartbeat.start();
    this.log.info({ capabilities: this.opts.capabilities }, 'agent started');
  }

  on<E extends keyof AgentEventMap>(event: E, listener: (...args: AgentEventMap[E]) => void): this {
    this.events.on(event, listener as never);
    return this;
  }

  once<E extends keyof AgentEventMap>(event: E, listener: (...args: AgentEventMap[E]) => void): this {
    this.events.once(event, listener as never);
    return this;
  }

  off<E extends keyof AgentEventMap>(event: E, listener: (...args: AgentEventMap[E]) => void): this {
    this.events.off(event, listener as never);
    return this;
  }

  onDesired(handler: DesiredHandler): this {
    this.desired.setHandler(handler);
    return this;
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private onConnect(client: MqttClient, connack: IConnackPacket): void {
    if (this.stopping) return;
    this.up = true;
    this.connectErrors.connected();
    this.log.info('connected to broker');
    this.desired.onConnect();
    if (!connack.sessionPresent) {
      const subscriptions: Record<string, { qos: 1 }> = {
        [this.topics.commands(this.nodeId)]: { qos: 1 }, [this.topics.hubStatus()]: { qos: 1 },
        // Retained: the latest desired version arrives on every connect.
        [this.topics.desired(this.nodeId)]: { qos: 1 },
      };
      // Broadcast triggers (mode all) on the capability's topic, and those addressed to this node alone.
      for (const capability of this.capabilities) {
        subscriptions[this.topics.trigger(capability)] = { qos: 1 };
        subscriptions[this.topics.trigger(capability, this.nodeId)] = { qos: 1 };
      }
      client.subscribe(subscriptions, (err, granted, suback) => {
        // On a refusal mqtt.js leaves `granted` as asked: the SUBACK's codes, in the same order, say which.
        const codes = suback?.granted ?? [];
        const refused = (granted ?? []).filter((_, i) => (Number(codes[i] ?? 0) & 0x80) !== 0).map((g) => g.topic);
        if (!err && refused.length === 0) return;
        // A connection lost mid-SUBACK is retried by the next connect; a refusal (SUBACK 0x80) is not.
        if (!client.connected) return void this.log.debug({ err: err?.message }, 'subscribe interrupted by disconnect');
        this.log.error({ err: err?.message, refused }, 'the broker refused subscriptions: this node will miss work or commands. '
          + 'With --auth jwt, the token must grant every capability the agent announces (edgefed token issue --capabilities ...); '
          + 'a registration announcing more is dropped too');
      });
    }
    this.announce('connect');
    // After the birth: the hub hears who we are before what we did while away.
    this.outbox.online(client);
    this.emit('connect');
  }

  private onError(err: Error): void {
    this.connectErrors.onError(this.client, err);
  }

  private onClose(): void {
    // Any hub change while we were away is covered by the birth on our next connect.
    this.hubBootId = undefined;
    this.outbox.offline();
    const wasUp = this.up;
    this.up = false;
    if (this.stopping || !wasUp) return;
    this.log.info({ retry_in_ms: this.client?.options.reconnectPeriod }, 'disconnected from broker');
    this.emit('disconnect');
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = this.topics.parse(topic);
    if (parsed?.kind === 'node' && parsed.family === 'commands' && parsed.nodeId === this.nodeId) {
      this.commands.dispatch(payload);
    } else if (parsed?.kind === 'trigger' && this.capabilities.has(parsed.capability) && (parsed.nodeId ?? this.nodeId) === this.nodeId) {
      this.executor.onTrigger(parsed.capability, payload);
    } else if (parsed?.kind === 'node' && parsed.family === 'desired' && parsed.nodeId === this.nodeId) {
      this.desired.onMessage(payload);
    } else if (parsed?.kind === 'hub-status') {
      this.onHubStatus(payload);
    }
  }

  private onHubStatus(payload: Buffer): void {
    if (payload.length === 0) return; // retained hub status cleared
    const status = parseHubStatus(payload);
    if (!status.ok) {
      this.log.warn({ reason: status.reason }, 'ignoring malformed hub status');
      return;
    }
    if (status.value.state !== 'online') return;
    const previous = this.hubBootId;
    this.hubBootId = status.value.boot_id;
    // A new hub session may have lost its registry: announce again (Sparkplug rebirth).
    if (previous !== undefined && previous !== status.value.boot_id) this.announce('hub-restart');
    // After the birth above (or the one on connect): the hub knows the node before it hears the results.
    if (this.finalsHubBootId !== status.value.boot_id) this.replayFinals(status.value.boot_id);
  }

  /**
   * A hub session we have not sent our finals to: it may have died before
   * writing some of them (the broker acknowledged them, so nobody else holds a
   * copy). Not on a reconnect to the same session: the outbox covers that.
   * Running executions get one `running`: the hub gives restored work its
   * full timeout again, but one it believes only `dispatched` would be given
   * up after its accept timeout; for a hub that has it, it is mere liveness.
   */
  private replayFinals(hubBootId: string): void {
    const updates = [...this.finals.recent(), ...this.executor.runningUpdates()];
    // Handed to mqtt.js, which re-sends them after a reconnect until acknowledged.
    if (updates.length > 0 && this.outbox.resend(updates) === 0) return;
    this.finalsHubBootId = hubBootId;
    if (updates.length > 0) this.log.info({ replayed: updates.length, hub_boot_id: hubBootId }, 'replayed recent final and running updates to a new hub session');
  }

  /** Birth: registration, then status online, both retained QoS 1. */
  private announce(reason: 'connect' | 'rebirth' | 'hub-restart'): void {
    const client = this.client;
    if (!client?.connected || this.stopping) return;
    // Strictly increasing within a boot, even if the device clock steps back (NTP at boot).
    const ts = Math.max(Date.now(), this.lastAnnounceTs + 1);
    this.lastAnnounceTs = ts;
    this.lastAnnounceAt = performance.now();
    this.lastAnnounceReason = reason;
    this.publish(client, this.topics.registration(this.nodeId), registrationPayload(this.opts, this.bootId, this.hardware, ts), RETAINED_QOS1);
    this.publish(client, this.topics.status(this.nodeId), onlineStatus(this.bootId, ts, this.session), RETAINED_QOS1);
    this.log.debug({ reason, ts }, 'announced');
  }

  private sendHeartbeat(): void {
    const client = this.client;
    if (!client?.connected || this.stopping) return;
    this.seq += 1;
    const beat = heartbeatPayload({
      seq: this.seq, ts: Date.now(), startedAt: this.startedAt, cpus: this.hardware.cpus, runningWpks: this.executor.runningCount,
    });
    this.publish(client, this.topics.heartbeat(this.nodeId), beat, { qos: 0, retain: false });
  }

  private publish(client: MqttClient, topic: string, payload: object, opts: IClientPublishOptions): void {
    client.publish(topic, JSON.stringify(payload), opts, (err) => {
      if (err) this.log.warn({ topic, err: err.message }, 'publish failed');
    });
  }

  private emit(event: keyof AgentEventMap): void {
    try {
      this.events.emit(event);
    } catch (err) {
      // A throwing listener must not break mqtt.js's own event handling.
      this.log.error({ event, err: err instanceof Error ? err.message : String(err) }, 'agent event listener threw');
    }
  }

  /**
   * Running work is aborted and reported `failed` ("agent stopped") first, so
   * the hub learns it before the offline status, or on the next start from
   * the spool if the broker is unreachable now. The alternative, leaving it
   * to the hub's lost-node handling, would not tell a mode-all WPK anything
   * and would make the hub guess what an agent knows for certain.
   */
  private async shutdown(): Promise<void> {
    this.heartbeat.stop();
    this.connectErrors.stop();
    const aborted = this.executor.stop();
    if (aborted > 0) this.log.info({ aborted }, 'aborted running work packages');
    // Nothing new is replayed now; what is undelivered stays in the spool for the next start.
    this.outbox.close();
    const client = this.client;
    if (client) {
      const wasConnected = client.connected;
      const payload = JSON.stringify(offlineStatus(this.bootId, 'shutdown', Date.now(), this.session));
      await disconnect(client, { topic: this.topics.status(this.nodeId), payload, opts: RETAINED_QOS1 }, this.opts.stopTimeoutMs, this.log);
      if (wasConnected) this.emit('disconnect');
    }
    this.spool.checkpoint();
    if (this.spool.size > 0) {
      const fields = { undelivered: this.spool.size, spool: this.opts.spoolDir };
      if (this.spool.durable) this.log.info(fields, 'execution updates kept in the spool for the next start');
      else this.log.warn(fields, 'execution updates lost: the agent has no spool directory');
    }
    this.log.info('agent stopped');
  }
}

/**
 * 128 random bits, URL-safe (what nanoid gives) without nanoid: nanoid reaches
 * for WebCrypto, which measured ~1.5-2 MB more RSS than randomBytes on Node 20.
 */
function newBootId(): string {
  return randomBytes(16).toString('base64url');
}
