/**
 * Leaving the broker within a time bound (the agent and the hub alike). A clean goodbye (a retained
 * offline/shutdown status, then DISCONNECT so the broker discards the will)
 * when the broker answers; otherwise the transport is cut and the broker's
 * copy of the will tells the hub instead. Either way the promise settles, so
 * SIGTERM handling can never hang on a dead network.
 */
import type { IClientPublishOptions, MqttClient } from 'mqtt';
import type { Logger } from './log.js';

export interface Goodbye {
  topic: string;
  payload: string;
  opts: IClientPublishOptions;
}

export async function disconnect(client: MqttClient, goodbye: Goodbye, timeoutMs: number, log: Logger): Promise<void> {
  const graceful = async (): Promise<void> => {
    if (client.connected) {
      // If the connection drops mid-goodbye the broker has published the will already: stop at once, do not retry.
      const outcome = await raceClose(client, client.publishAsync(goodbye.topic, goodbye.payload, goodbye.opts));
      if (outcome === 'done' && client.connected) {
        await client.endAsync(); // a clean DISCONNECT: the broker discards the will
        return;
      }
    }
    await client.endAsync(true); // nobody to say goodbye to; also cancels the reconnect timer
  };
  const finished = await settleWithin(graceful(), timeoutMs);
  if (finished === true) return;
  log.warn({ reason: finished === false ? 'timeout' : finished }, 'no clean goodbye; dropping the connection (the broker will publish the will)');
  // end(true) is a no-op while a graceful end is pending, so cut the transport directly.
  client.stream?.destroy();
  await settleWithin(client.endAsync(true), 1000);
}

/** Waits for `work`, or for the connection to close first. */
async function raceClose(client: MqttClient, work: Promise<unknown>): Promise<'done' | 'closed'> {
  let onClose: (() => void) | undefined;
  const closed = new Promise<'closed'>((resolve) => {
    onClose = () => resolve('closed');
    client.once('close', onClose);
  });
  try {
    return await Promise.race([work.then(() => 'done' as const), closed]);
  } finally {
    if (onClose) client.removeListener('close', onClose);
  }
}

/** true when `work` settled in time, false on timeout, or the rejection message. */
async function settleWithin(work: Promise<unknown>, ms: number): Promise<true | false | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true as const, (err: unknown) => (err instanceof Error ? err.message : String(err))), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
