/**
 * Where execution updates go: straight to the broker while connected, into
 * the spool while not, and on reconnect the spool is replayed oldest first
 * before anything new, so the hub sees each execution's states in order.
 *
 * Order across a connection loss holds because of how mqtt.js treats QoS 1:
 * a publish handed to the client stays in its outgoing store until PUBACK,
 * and on reconnect the client re-sends that store *before* it emits
 * `connect`. So whatever was published before the loss reaches the broker
 * before the replay, which starts on `connect`, and the replay goes before
 * new updates because those queue behind it in the spool.
 */
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import type { Logger } from '../lib/log.js';
import type { Topics } from '../lib/topics.js';
import type { ExecutionUpdate } from '../lib/wire.js';
import type { Spool, SpoolEntry } from './spool.js';

const QOS1: IClientPublishOptions = { qos: 1, retain: false };
/** Updates in flight at once during a replay: bounded memory in mqtt.js's store, and acks tell us how far we got. */
export const REPLAY_BATCH = 64;

export class ExecutionOutbox {
  /** Set between `online` and `offline`: the client to publish through. */
  private client: MqttClient | undefined;
  private replaying = false;
  /** After `close` nothing new is replayed; the spool keeps the rest for the next start. */
  private closed = false;

  constructor(
    private readonly spool: Spool,
    private readonly topics: Topics,
    private readonly log: Logger,
  ) {}

  /** Hands one update over. Never throws; never blocks on the network. */
  send(update: ExecutionUpdate): void {
    const client = this.client;
    // The hot path: connected, nothing queued ahead. One publish, like any other message.
    if (client && !this.replaying && this.spool.size === 0) {
      this.publish(client, update);
      return;
    }
    this.spool.append(update);
    this.replay();
  }

  /** The connection is up and the birth messages are on their way: replay what was spooled. */
  online(client: MqttClient): void {
    if (this.closed) return;
    this.client = client;
    this.replay();
  }

  offline(): void {
    this.client = undefined;
  }

  /** Stops replaying (the agent is stopping); later updates are spooled, and the store keeps exactly what is undelivered. */
  close(): void {
    this.closed = true;
    this.client = undefined;
  }

  /**
   * Publishes updates the broker already acknowledged once (recent finals, to
   * a restarted hub), all at once: they are bounded in number and bytes, and
   * mqtt.js keeps each QoS 1 publish until its PUBACK, across reconnects. Not
   * spooled on failure: they were delivered before, this is a courtesy copy.
   * Returns how many were handed to the client (0 when offline).
   */
  resend(updates: readonly ExecutionUpdate[]): number {
    const client = this.client;
    if (!client || this.closed) return 0;
    for (const update of updates) {
      client.publish(this.topics.execution(update.node_id, update.wpk_id), JSON.stringify(update), QOS1, (err) => {
        if (err) this.log.debug({ wpk_id: update.wpk_id, state: update.state, err: err.message }, 'replayed final update not acknowledged');
      });
    }
    return updates.length;
  }

  private publish(client: MqttClient, update: ExecutionUpdate): void {
    client.publish(this.topics.execution(update.node_id, update.wpk_id), JSON.stringify(update), QOS1, (err) => {
      if (!err) return;
      if (client.connected && !client.disconnecting) {
        // Not a lost connection (mqtt.js keeps those for the next one): re-sending would fail the same way.
        this.log.warn({ wpk_id: update.wpk_id, state: update.state, err: err.message }, 'execution update refused by the MQTT client; dropped');
        return;
      }
      // The client gave up on it (the agent is stopping): keep it for the next start.
      this.log.debug({ wpk_id: update.wpk_id, state: update.state, err: err.message }, 'execution update not acknowledged; spooled');
      this.spool.append(update);
    });
  }

  private replay(): void {
    if (this.replaying || this.closed || !this.client || this.spool.size === 0) return;
    this.replaying = true;
    void this.drain().finally(() => {
      this.replaying = false;
    });
  }

  /**
   * Publishes the spool batch by batch, removing each batch once the broker
   * acknowledged all of it. A batch interrupted by a disconnect stays
   * pending in mqtt.js and completes after the reconnect, so one loop spans
   * the outage: no second replay starts, nothing is published twice by us.
   */
  private async drain(): Promise<void> {
    let sent = 0;
    const started = this.spool.size;
    for (;;) {
      const client = this.client;
      const batch = this.spool.peek(REPLAY_BATCH);
      if (!client || batch.length === 0) break;
      if (!(await publishAll(client, this.topics, batch))) break;
      this.spool.removeThrough(batch[batch.length - 1]!);
      sent += batch.length;
    }
    // Stopped halfway (offline again, closing): make the store hold exactly what is left.
    if (this.spool.size > 0) this.spool.checkpoint();
    if (sent > 0) this.log.info({ replayed: sent, spooled_at_start: started, left: this.spool.size }, 'replayed spooled execution updates');
  }
}

/** true when the broker acknowledged every entry. */
async function publishAll(client: MqttClient, topics: Topics, batch: readonly SpoolEntry[]): Promise<boolean> {
  const acks = batch.map(({ update }) => new Promise<boolean>((resolve) => {
    client.publish(topics.execution(update.node_id, update.wpk_id), JSON.stringify(update), QOS1, (err) => resolve(!err));
  }));
  const results = await Promise.all(acks);
  return results.every(Boolean);
}
