/**
 * Creating the MQTT client: the connect options the presence protocol needs
 * (client id, Last Will) and the reconnect backoff mqtt.js lacks.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import type { ResolvedAgentOptions } from './options.js';
import { defaultFactory } from './transport.js';

export interface WillSpec {
  topic: string;
  /** Builds the will payload; called again before every reconnect so its ts is that CONNECT's. */
  payload: () => string;
}

export function clientOptions(opts: ResolvedAgentOptions, will: WillSpec, policy: BackoffPolicy): IClientOptions {
  const credentials: Partial<IClientOptions> = {};
  if (opts.username !== undefined) credentials.username = opts.username;
  if (opts.password !== undefined) credentials.password = opts.password;
  return {
    keepalive: opts.keepaliveS,
    clean: true,
    // Heartbeats are skipped while offline; never let a long outage pile them up in memory.
    queueQoSZero: false,
    // The agent subscribes itself on every connect (see agent.ts): one code path, no hidden state.
    resubscribe: false,
    ...opts.mqtt,
    ...credentials,
    reconnectPeriod: backoffDelay(0, policy),
    clientId: opts.nodeId,
    will: { topic: will.topic, payload: will.payload(), qos: 1, retain: true },
  };
}

/** Creates the client through the injected factory (or the default transport) and wires backoff and will refresh. */
export async function createClient(opts: ResolvedAgentOptions, will: WillSpec): Promise<MqttClient> {
  const policy: BackoffPolicy = { minMs: opts.reconnectMinMs, maxMs: opts.reconnectMaxMs };
  const factory = opts.connect ?? (await defaultFactory(opts.brokerUrl));
  const client = factory(clientOptions(opts, will, policy));
  attachBackoff(client, policy);
  client.on('reconnect', () => {
    client.options.will = { topic: will.topic, payload: will.payload(), qos: 1, retain: true };
  });
  return client;
}

/**
 * mqtt.js arms its reconnect timer from `options.reconnectPeriod` when the
 * connection closes, and emits `reconnect` just before each attempt. So the
 * value set at `connect` is the first delay after a loss, and the value set at
 * `reconnect` #n is the delay used if attempt #n fails.
 */
export function attachBackoff(client: MqttClient, policy: BackoffPolicy, random: () => number = Math.random): void {
  let attempt = 0;
  client.on('connect', () => {
    attempt = 0;
    client.options.reconnectPeriod = backoffDelay(0, policy, random);
  });
  client.on('reconnect', () => {
    attempt += 1;
    client.options.reconnectPeriod = backoffDelay(attempt, policy, random);
  });
}
