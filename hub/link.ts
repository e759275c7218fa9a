/**
 * The hub's MQTT session (its transport over mqtt.js, see transport.ts): birth and death on `hub/status` (retained, the
 * death is the Last Will, as a Sparkplug host application), subscriptions to
 * the node topics, and a publish that never throws. Re-announces on every
 * reconnect, because a broker that restarted may have lost its retained store.
 *
 * With an external broker the session is persistent (clean: false under a
 * client id that survives restarts): the broker queues what nodes publish at
 * QoS 1 while the hub is away, and delivers it right after the next CONNACK.
 */
import { createHash } from 'node:crypto';
import type { IClientOptions, MqttClient } from 'mqtt';
import { DEFAULT_TOPIC_ROOT } from '../lib/topics.js';
import type { HubStatus } from '../lib/wire.js';
import { disconnect } from '../lib/goodbye.js';
import { hubStatusPayload, hubSubscriptions, STOP_TIMEOUT_MS, type HubTransport, type LinkSetup, type OpenHubTransport } from './transport.js';
import { EdgefedError } from '../lib/errors.js';

/**
 * Sessions the broker ends this soon after CONNACK, this many times in a row,
 * look like a client id takeover: another client with the same id connects,
 * the broker drops the older one, which reconnects and drops the other.
 */
/** Pause before the hub reconnects its session. */
const RECONNECT_MS = 1000;
const SHORT_SESSION_MS = 5000;
const TAKEOVER_STREAK = 3;
const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/**
 * The client id of a persistent hub session: stable across restarts, and
 * distinct per topic root so federations sharing a broker keep apart.
 */
export function hubClientId(topicRoot: string): string {
  if (topicRoot === DEFAULT_TOPIC_ROOT) return 'edgefed-hub';
  return `edgefed-hub-${createHash('sha256').update(topicRoot).digest('hex').slice(0, 8)}`;
}

/** Throws EDGEFED_ERR_HUB_CONFIG for a client id that brokers may refuse or that ACL patterns cannot name. */
export function checkClientId(clientId: string): string {
  if (!CLIENT_ID.test(clientId)) {
    throw new EdgefedError('EDGEFED_ERR_HUB_CONFIG', `clientId ${JSON.stringify(clientId)} is not usable: 1 to 128 characters, letters, digits and . _ : @ -, starting with a letter or digit`);
  }
  return clientId;
}

export interface LinkOptions extends LinkSetup {
  connect: (opts: IClientOptions) => MqttClient;
}

/** The hub's transport over an mqtt.js client: `mqtt.connect(url, o)` for an external broker. */
export function mqttTransport(connect: (opts: IClientOptions) => MqttClient): OpenHubTransport {
  return (setup) => new HubLink({ ...setup, connect });
}

export class HubLink implements HubTransport {
  #client: MqttClient | undefined;
  #sessions = 0;
  #startTimer: NodeJS.Timeout | undefined;
  #abortStart: ((err: Error) => void) | undefined;
  #closed = false;
  /** When the current session's CONNACK came; undefined while disconnected. */
  #connectedAt: number | undefined;
  /** The hub cut the current connection itself (a failed subscribe): not the broker's doing. */
  #cutByUs = false;
  #shortSessions = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: LinkOptions) {}

  get connected(): boolean { return this.#client?.connected ?? false; }

  #status(state: HubStatus['state'], reason?: HubStatus['reason']): string {
    return hubStatusPayload(this.opts, state, reason);
  }

  /** Connects and resolves after the first CONNACK; later reconnects are handled in the background. */
  async start(): Promise<void> {
    if (this.#closed) throw new EdgefedError('EDGEFED_ERR_HUB_STOPPED', 'the hub link was stopped');
    const { topics, log } = this.opts;
    const clientOpts: IClientOptions = {
      clientId: this.opts.clientId,
      keepalive: this.opts.keepaliveS,
      clean: !this.opts.persistent,
      // With mayAct (HA) the link reconnects itself, and only while the hub may act:
      // mqtt.js's own reconnect would take the session back from a successor.
      reconnectPeriod: this.opts.mayAct ? 0 : RECONNECT_MS,
      // #onConnect subscribes on every connect, session present or not (the
      // broker then replays the retained store, which the resync needs);
      // mqtt.js's own resubscription would make it replay everything twice.
      resubscribe: false,
      will: { topic: topics.hubStatus(), payload: Buffer.from(this.#status('offline', 'lost')), qos: 1, retain: true },
    };
    // mqtt.js's debug calls cost ~4 % of the hub at full WPK throughput; keep them for DEBUG=mqttjs*.
    if (!/mqttjs/.test(process.env.DEBUG ?? '')) clientOpts.log = () => undefined;
    if (this.opts.username !== undefined) clientOpts.username = this.opts.username;
    if (this.opts.password !== undefined) clientOpts.password = this.opts.password;
    const client = this.opts.connect(clientOpts);
    this.#client = client;
    // A session begins at its CONNACK. What a persistent session queued follows
    // at once, and mqtt.js emits 'connect' only once it has re-sent its own
    // outgoing store, so a queued message may be routed first: the per-session
    // reset happens at the CONNACK itself.
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'connack' && (packet.returnCode ?? packet.reasonCode) === 0) this.#onConnack();
    });
    client.on('message', (topic, payload, packet) => this.opts.onMessage(topic, payload, packet.retain === true));
    client.on('offline', () => log.warn('hub lost the broker; reconnecting'));
    client.on('close', () => { this.#onClose(); this.#reconnectIfAllowed(client); });
    client.on('error', (err) => log.error({ err: err.message }, 'hub MQTT error'));
    // Resolves once the first session is announced and subscribed: a node that
    // registers after start() returns is seen live, not as a retained replay.
    await new Promise<void>((resolve, reject) => {
      this.#abortStart = reject;
      this.#startTimer = setTimeout(() => reject(new EdgefedError('EDGEFED_ERR_BROKER_UNREACHABLE', 'the hub could not reach the broker within 10 s')), 10_000);
      client.on('connect', (connack) => void this.#onConnect(client, connack.sessionPresent).then((ok) => {
        if (ok) { clearTimeout(this.#startTimer); resolve(); }
      }));
    }).catch(async (err: Error) => { await client.endAsync(true); throw err; })
      .finally(() => { clearTimeout(this.#startTimer); this.#abortStart = undefined; });
  }

  async #onConnect(client: MqttClient, sessionPresent: boolean): Promise<boolean> {
    const { topics, log, clientId, persistent } = this.opts;
    if (this.opts.mayAct && !this.opts.mayAct()) {
      // A session that came back after the lease ran out: leave it before it announces anything.
      log.warn('hub may no longer act: leaving the session it just got');
      this.abandon();
      return false;
    }
    try {
      // Subscribe before announcing: agents re-announce when they see the hub
      // online, and those re-announcements must find the hub listening. The
      // hub's own status topic tells whether the broker kept its retained store.
      const granted = await client.subscribeAsync(hubSubscriptions(topics));
      const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) throw new Error(`the broker refused the subscriptions ${refused.join(', ')}`);
      await client.publishAsync(topics.hubStatus(), this.#status('online'), { qos: 1, retain: true });
      this.#sessions += 1;
      log.info({ first: this.#sessions === 1, client_id: clientId, persistent, session_present: sessionPresent }, 'hub connected to the broker');
      if (persistent && !sessionPresent && this.#sessions > 1) {
        log.warn({ client_id: clientId }, 'the broker kept no session for the hub (restarted without persistence, or the session expired): what nodes published while the hub was disconnected is lost');
      }
      this.opts.onSubscribed(this.#sessions === 1);
      return true;
    } catch (err) {
      // Lost meanwhile: mqtt.js reconnects by itself, and the next session subscribes.
      if (!client.connected) {
        if (!this.#closed) log.warn({ err: (err as Error).message }, 'hub lost the broker while subscribing; reconnecting');
        return false;
      }
      // A hub that cannot hear the nodes must not sit connected: drop the
      // connection and let mqtt.js reconnect and try again.
      log.error({ err: (err as Error).message }, 'hub could not subscribe or announce; reconnecting');
      this.#cutByUs = true;
      client.stream.destroy();
      return false;
    }
  }

  #onConnack(): void {
    this.#connectedAt = Date.now();
    this.opts.onConnecting();
  }

  /** Counts sessions the broker ended right after they began; a streak of them is most likely a client id takeover. */
  #onClose(): void {
    const since = this.#connectedAt;
    const cutByUs = this.#cutByUs;
    this.#connectedAt = undefined;
    this.#cutByUs = false;
    if (since === undefined || cutByUs || this.#closed) return;
    if (Date.now() - since >= SHORT_SESSION_MS) {
      this.#shortSessions = 0;
      return;
    }
    this.#shortSessions += 1;
    if (this.#shortSessions !== TAKEOVER_STREAK) return;
    this.opts.log.error(
      { client_id: this.opts.clientId, sessions: this.#shortSessions },
      `EDGEFED_ERR_HUB_SESSION_TAKEOVER: the broker ended the hub's session ${TAKEOVER_STREAK} times in a row within ${SHORT_SESSION_MS / 1000} s of connecting. `
      + `Another client most likely uses the client id "${this.opts.clientId}" (a second hub with the same topic root on this broker?), `
      + 'and the broker keeps whichever connected last. Stop the other one, or give each hub its own client id (--hub-client-id).',
    );
  }

  /** HA only (mqtt.js reconnects otherwise): try again in RECONNECT_MS, if the hub may still act then. */
  #reconnectIfAllowed(client: MqttClient): void {
    const mayAct = this.opts.mayAct;
    if (!mayAct || this.#closed || this.#reconnectTimer) return;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#closed || client !== this.#client || client.connected) return;
      if (!mayAct()) { this.opts.log.warn('hub may no longer act: not reconnecting'); return; }
      client.reconnect();
    }, RECONNECT_MS);
  }

  reannounce(): void {
    this.publish(this.opts.topics.hubStatus(), this.#status('online'), { qos: 1, retain: true });
  }

  /** Cuts the connection at once: no goodbye, no final publish; the broker sends the will. */
  abandon(): void {
    this.#closed = true;
    clearTimeout(this.#startTimer);
    clearTimeout(this.#reconnectTimer);
    this.#abortStart?.(new EdgefedError('EDGEFED_ERR_HUB_STOPPED', 'the hub stepped down while connecting'));
    const client = this.#client;
    this.#client = undefined;
    client?.end(true);
  }

  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): void {
    this.#client?.publish(topic, payload, opts, (err) => {
      if (err) this.opts.log.warn({ topic, err: err.message }, 'hub publish failed');
    });
  }

  /**
   * Publishes the hub's shutdown, then disconnects cleanly (which discards the
   * will). Never unsubscribes: a persistent session keeps its subscriptions,
   * so the broker queues node messages for the next start.
   */
  async stop(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#startTimer);
    clearTimeout(this.#reconnectTimer);
    this.#abortStart?.(new EdgefedError('EDGEFED_ERR_HUB_STOPPED', 'the hub was stopped while connecting'));
    const client = this.#client;
    if (!client) return;
    this.#client = undefined;
    const goodbye = { topic: this.opts.topics.hubStatus(), payload: this.#status('offline', 'shutdown'), opts: { qos: 1, retain: true } as const };
    await disconnect(client, goodbye, STOP_TIMEOUT_MS, this.opts.log);
  }
}
