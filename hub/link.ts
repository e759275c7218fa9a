/**
 * The hub's MQTT session: birth and death on `hub/status` (retained, the
 * death is the Last Will, as a Sparkplug host application), subscriptions to
 * the node topics, and a publish that never throws. Re-announces on every
 * reconnect, because a broker that restarted may have lost its retained store.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from '../lib/log.js';
import type { Topics } from '../lib/topics.js';
import type { HubStatus } from '../lib/wire.js';
import { disconnect } from '../lib/goodbye.js';
import type { Publisher } from './context.js';

/** A clean goodbye is given this long before the connection is cut (the will then says `lost`). */
const STOP_TIMEOUT_MS = 3000;

export interface LinkOptions {
  connect: (opts: IClientOptions) => MqttClient;
  topics: Topics;
  bootId: string;
  clientId: string;
  keepaliveS: number;
  version: string;
  log: Logger;
  username?: string;
  password?: string;
  onMessage: (topic: string, payload: Buffer, retained: boolean) => void;
  /** Called on every (re)connect before subscribing: what the broker replays follows. */
  onConnecting: () => void;
  /** Called after every (re)connect once subscribed and announced; `first` for the first such session. */
  onSubscribed: (first: boolean) => void;
}

export class HubLink implements Publisher {
  #client: MqttClient | undefined;
  #sessions = 0;
  #startTimer: NodeJS.Timeout | undefined;
  #abortStart: ((err: Error) => void) | undefined;
  #closed = false;

  constructor(private readonly opts: LinkOptions) {}

  get connected(): boolean { return this.#client?.connected ?? false; }

  #status(state: HubStatus['state'], reason?: HubStatus['reason']): string {
    const s: HubStatus = { state, boot_id: this.opts.bootId, ts: Date.now(), version: this.opts.version };
    if (reason) s.reason = reason;
    return JSON.stringify(s);
  }

  /** Connects and resolves after the first CONNACK; later reconnects are handled in the background. */
  async start(): Promise<void> {
    if (this.#closed) throw new Error('EDGEFED_ERR_HUB_STOPPED: the hub link was stopped');
    const { topics, log } = this.opts;
    const clientOpts: IClientOptions = {
      clientId: this.opts.clientId,
      keepalive: this.opts.keepaliveS,
      clean: true,
      reconnectPeriod: 1000,
      // #onConnect subscribes on every connect; mqtt.js's own resubscription
      // would make the broker replay every retained message twice.
      resubscribe: false,
      will: { topic: topics.hubStatus(), payload: Buffer.from(this.#status('offline', 'lost')), qos: 1, retain: true },
    };
    // mqtt.js's debug calls cost ~4 % of the hub at full WPK throughput; keep them for DEBUG=mqttjs*.
    if (!/mqttjs/.test(process.env.DEBUG ?? '')) clientOpts.log = () => undefined;
    if (this.opts.username !== undefined) clientOpts.username = this.opts.username;
    if (this.opts.password !== undefined) clientOpts.password = this.opts.password;
    const client = this.opts.connect(clientOpts);
    this.#client = client;
    client.on('message', (topic, payload, packet) => this.opts.onMessage(topic, payload, packet.retain === true));
    client.on('offline', () => log.warn('hub lost the broker; reconnecting'));
    client.on('error', (err) => log.error({ err: err.message }, 'hub MQTT error'));
    // Resolves once the first session is announced and subscribed: a node that
    // registers after start() returns is seen live, not as a retained replay.
    await new Promise<void>((resolve, reject) => {
      this.#abortStart = reject;
      this.#startTimer = setTimeout(() => reject(new Error('EDGEFED_ERR_BROKER_UNREACHABLE: the hub could not reach the broker within 10 s')), 10_000);
      client.on('connect', () => void this.#onConnect(client).then((ok) => {
        if (ok) { clearTimeout(this.#startTimer); resolve(); }
      }));
    }).catch(async (err: Error) => { await client.endAsync(true); throw err; })
      .finally(() => { clearTimeout(this.#startTimer); this.#abortStart = undefined; });
  }

  async #onConnect(client: MqttClient): Promise<boolean> {
    const { topics, log } = this.opts;
    this.opts.onConnecting();
    try {
      // Subscribe before announcing: agents re-announce when they see the hub
      // online, and those re-announcements must find the hub listening. The
      // hub's own status topic tells whether the broker kept its retained store.
      const granted = await client.subscribeAsync(
        [
          topics.allNodes('registration'), topics.allNodes('status'), topics.allNodes('heartbeat'), topics.hubStatus(),
          topics.allExecutions(), topics.allTriggers(),
        ],
        { qos: 1 },
      );
      const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) throw new Error(`the broker refused the subscriptions ${refused.join(', ')}`);
      await client.publishAsync(topics.hubStatus(), this.#status('online'), { qos: 1, retain: true });
      this.#sessions += 1;
      log.info({ first: this.#sessions === 1 }, 'hub connected to the broker');
      this.opts.onSubscribed(this.#sessions === 1);
      return true;
    } catch (err) {
      // A hub that cannot hear the nodes must not sit connected: drop the
      // connection and let mqtt.js reconnect and try again.
      log.error({ err: (err as Error).message }, 'hub could not subscribe or announce; reconnecting');
      client.stream.destroy();
      return false;
    }
  }

  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): void {
    this.#client?.publish(topic, payload, opts, (err) => {
      if (err) this.opts.log.warn({ topic, err: err.message }, 'hub publish failed');
    });
  }

  /** Publishes the hub's shutdown, then disconnects cleanly (which discards the will). */
  async stop(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#startTimer);
    this.#abortStart?.(new Error('EDGEFED_ERR_HUB_STOPPED: the hub was stopped while connecting'));
    const client = this.#client;
    if (!client) return;
    this.#client = undefined;
    const goodbye = { topic: this.opts.topics.hubStatus(), payload: this.#status('offline', 'shutdown'), opts: { qos: 1, retain: true } as const };
    await disconnect(client, goodbye, STOP_TIMEOUT_MS, this.opts.log);
  }
}
