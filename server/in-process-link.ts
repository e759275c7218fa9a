/**
 * The embedded hub's session: the broker lives in this process, so the hub
 * reads its bus and store directly (broker/in-process.ts) instead of
 * through an MQTT client, which cost an encode, a decode and an
 * acknowledgement per message. One session for the hub's lifetime: nothing
 * to reconnect to. No Last Will either: the broker goes down with the hub's
 * process, and a clean stop announces `offline/shutdown` as HubLink does.
 * The hub is trusted: its session skips authentication and the ACL.
 */
import type { InProcessClient } from '../broker/index.js';
import { hubStatusPayload, hubSubscriptions, STOP_TIMEOUT_MS, type HubTransport, type LinkSetup, type OpenHubTransport } from '../hub/transport.js';
import { EdgefedError } from '../lib/errors.js';

const stopped = (): EdgefedError => new EdgefedError('EDGEFED_ERR_HUB_STOPPED', 'the hub was stopped while connecting');

export class InProcessLink implements HubTransport {
  #client: InProcessClient | undefined;
  #closed = false;

  constructor(private readonly open: () => InProcessClient, private readonly setup: LinkSetup) {}

  get connected(): boolean { return this.#client?.open ?? false; }

  async start(): Promise<void> {
    if (this.#closed) throw new EdgefedError('EDGEFED_ERR_HUB_STOPPED', 'the hub link was stopped');
    const { topics, log, clientId } = this.setup;
    const client = this.open();
    this.#client = client;
    try {
      this.setup.onConnecting();
      // Subscribed (and the store replayed) before announcing, as HubLink: agents re-announce when
      // they see the hub online, and the replay must not contain this announcement.
      await client.subscribe(Object.keys(hubSubscriptions(topics)), this.setup.onMessage);
      if (this.#closed) throw stopped();
      await client.publish(topics.hubStatus(), hubStatusPayload(this.setup, 'online'), { qos: 1, retain: true });
      if (this.#closed) throw stopped();
    } catch (err) {
      this.#client = undefined;
      await client.close();
      throw err;
    }
    log.info({ first: true, client_id: clientId, persistent: false, session_present: false, in_process: true }, 'hub connected to the broker');
    this.setup.onSubscribed(true);
  }

  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): void {
    const client = this.#client;
    if (!client) return;
    // Never inside the caller's stack: aedes routes a QoS 0 message synchronously, and the hub's
    // own echo (a trigger, a re-published registration) must come after the caller finished, as
    // it does over MQTT. One queue, so the hub's publishes keep their order.
    queueMicrotask(() => {
      client.publish(topic, payload, opts).catch((err: Error) => this.setup.log.warn({ topic, err: err.message }, 'hub publish failed'));
    });
  }

  reannounce(): void {
    this.publish(this.setup.topics.hubStatus(), hubStatusPayload(this.setup, 'online'), { qos: 1, retain: true });
  }

  abandon(): void {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    void client?.close();
  }

  async stop(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    if (!client) return;
    this.#client = undefined;
    if (client.open) {
      const goodbye = client.publish(this.setup.topics.hubStatus(), hubStatusPayload(this.setup, 'offline', 'shutdown'), { qos: 1, retain: true });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), STOP_TIMEOUT_MS); });
      await Promise.race([goodbye, timeout])
        .catch((err: Error) => this.setup.log.warn({ reason: err.message }, 'no clean goodbye on the embedded broker'))
        .finally(() => clearTimeout(timer));
    }
    await client.close();
  }
}

/** The hub's transport on an embedded broker of this process. */
export function inProcessTransport(broker: { connectInProcess(): InProcessClient }): OpenHubTransport {
  return (setup) => new InProcessLink(() => broker.connectInProcess(), setup);
}
