/**
 * What the agent says and does when it cannot connect. Network errors are
 * logged at 1, 2, 4, 8... failures (visible, yet quiet over hours) with a
 * hint when the port does not speak MQTT; mqtt.js retries them with the
 * agent's backoff. A broker that refuses the agent's credentials (CONNACK
 * 4/5) gets one line with the likely cause, from the agent's own token, and
 * a retry timer of the agent's own: mqtt.js gives up after such a refusal,
 * and a device must not stay off for good because a hub was briefly started
 * with the wrong key. When retrying cannot help until someone changes the
 * token, the retry waits `authRetryMs` (5 minutes by default).
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from '../lib/log.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { describeFinding, findTokenProblem, isAuthRefusal, retryCannotHelp, type OwnCredentials } from './token-check.js';

export interface ConnectErrorOptions {
  own: OwnCredentials;
  log: Logger;
  policy: BackoffPolicy;
  /** The wait before connecting again after a refusal that retrying cannot cure. */
  authRetryMs: number;
}

export class ConnectErrors {
  #failures = 0;
  #refusals = 0;
  #lastCause: string | undefined;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(private readonly o: ConnectErrorOptions) {}

  onError(client: MqttClient | undefined, err: Error): void {
    this.#failures += 1;
    const code = (err as { code?: unknown }).code;
    if (client && isAuthRefusal(code)) return void this.#refused(client, err, code).catch((e: unknown) => this.o.log.error({ err: String(e) }, 'could not schedule a new connect'));
    const hint = notMqtt(err);
    const fields = { err: err.message, code, failures: this.#failures, ...(hint ? { hint } : {}) };
    const isPowerOfTwo = (this.#failures & (this.#failures - 1)) === 0;
    if (isPowerOfTwo) this.o.log.warn(fields, hint ? `broker connection error: ${hint}` : 'broker connection error');
    else this.o.log.debug(fields, 'broker connection error');
  }

  connected(): void {
    this.#failures = 0;
    this.#refusals = 0;
    this.#lastCause = undefined;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
  }

  async #refused(client: MqttClient, err: Error, code: unknown): Promise<void> {
    // Loaded on the first refusal only: an agent that connects never loads jose.
    const { decodeJwt } = await import('jose');
    const now = Date.now();
    const finding = findTokenProblem(this.o.own, (token) => decodeJwt(token), now);
    const cause = describeFinding(finding, this.o.own);
    const delay = retryCannotHelp(finding) ? this.o.authRetryMs
      : finding.kind === 'not_yet_valid' ? Math.min(Math.max(finding.at - now, this.o.policy.minMs), this.o.authRetryMs)
        : backoffDelay(this.#refusals, this.o.policy);
    this.#refusals += 1;
    const fields = { code, cause: finding.kind, retry_in_ms: delay, refusals: this.#refusals };
    if (cause !== this.#lastCause) this.o.log.error(fields, `the broker refused this agent (${err.message}): ${cause}`);
    else this.o.log.debug(fields, 'the broker refused this agent again');
    this.#lastCause = cause;
    if (this.#stopped) return;
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => { if (!this.#stopped && !client.connected) client.reconnect(); }, delay);
  }
}

/**
 * mqtt.js's words for bytes that are not MQTT ("Invalid header flag bits",
 * "Invalid cmd", ...) mean the port speaks something else: most often the
 * hub's HTTP port (8080) given as --broker instead of its MQTT port (1883).
 */
export function notMqtt(err: Error): string | undefined {
  if (!/Invalid header flag bits|Invalid cmd|Invalid packet|Unknown type|unsupported protocol|Malformed/i.test(err.message)) return undefined;
  return 'the broker\'s port does not speak MQTT (an HTTP port such as the hub\'s 8080?); give the MQTT port, 1883 by default';
}
