/**
 * A session on the embedded broker from inside its own process: subscribes
 * on aedes's message bus and publishes through `aedes.publish`, so no MQTT
 * packet is encoded, parsed or acknowledged on the way. For the embedded
 * hub, which otherwise read its own broker through an mqtt.js client over an
 * in-memory stream (per message: encode, decode, PUBACK, the broker's
 * outgoing store).
 *
 * What an MQTT session gives a subscriber, kept here: retained messages are
 * replayed on subscribe (flagged retained), and live ones arrive in the
 * bus's order (aedes emits QoS 1 messages in the order it accepted them).
 * What it does not go through: authenticate and the ACL hooks (the caller is
 * the process that owns the broker), and a Last Will (the broker ends with
 * its process).
 */
import type { Aedes, AedesPublishPacket } from 'aedes';
import type { AedesPersistence } from 'aedes-persistence';
import { EdgefedError } from '../lib/errors.js';

export type InProcessDeliver = (topic: string, payload: Buffer, retained: boolean) => void;

export interface InProcessClient {
  /** False once closed, or once the broker stopped. */
  readonly open: boolean;
  /**
   * Delivers every later message matching `patterns` (MQTT wildcards), then
   * replays the retained ones; resolves once the replay is delivered. A
   * message published meanwhile may come twice: live, then from the store.
   */
  subscribe(patterns: readonly string[], deliver: InProcessDeliver): Promise<void>;
  /** Resolves once aedes has stored (if retained) and routed the message. */
  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
  /** Drops the subscriptions; publishes fail afterwards. Idempotent. */
  close(): Promise<void>;
}

type Listener = (packet: AedesPublishPacket, done: () => void) => void;

export function connectInProcess(aedes: Aedes, persistence: AedesPersistence, onClose: () => void): InProcessClient {
  const listeners: Array<{ pattern: string; listener: Listener }> = [];
  let closed = false;
  let brokerClosed = aedes.closed;
  const markBrokerClosed = () => { brokerClosed = true; };
  aedes.once('closed', markBrokerClosed);

  const unsubscribeAll = () => Promise.all(listeners.splice(0).map(({ pattern, listener }) =>
    new Promise<void>((resolve) => aedes.unsubscribe(pattern, listener, () => resolve()))));

  return {
    get open() { return !closed && !brokerClosed; },

    async subscribe(patterns, deliver) {
      if (closed) throw new EdgefedError('EDGEFED_ERR_IN_PROCESS_CLOSED', 'the in-process session is closed');
      // Completing at once is safe: the bus never waits on us, and the hub handles a message synchronously.
      const listener: Listener = (packet, done) => {
        deliver(packet.topic, packet.payload as Buffer, false);
        done();
      };
      await Promise.all(patterns.map((pattern) => new Promise<void>((resolve) => {
        listeners.push({ pattern, listener });
        aedes.subscribe(pattern, listener, () => resolve());
      })));
      // As aedes does for a SUBSCRIBE (lib/handlers/subscribe.js): the store's matches, after the subscription.
      for await (const packet of persistence.createRetainedStreamCombi([...patterns])) {
        if (closed) break;
        const p = packet as AedesPublishPacket;
        deliver(p.topic, p.payload as Buffer, true);
      }
    },

    publish(topic, payload, opts) {
      if (closed || brokerClosed) return Promise.reject(new EdgefedError('EDGEFED_ERR_IN_PROCESS_CLOSED', 'the in-process session is closed'));
      const packet = { cmd: 'publish', topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos: opts.qos, retain: opts.retain, dup: false } as const;
      return new Promise((resolve, reject) => aedes.publish(packet, (err) => (err ? reject(err) : resolve())));
    },

    async close() {
      if (closed) return;
      closed = true;
      aedes.removeListener('closed', markBrokerClosed);
      await unsubscribeAll();
      onClose();
    },
  };
}
