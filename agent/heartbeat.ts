import { jitteredInterval } from './payloads.js';

/**
 * Calls `beat` every interval ±10%. A chain of timeouts rather than
 * setInterval so every period gets its own jitter. The timer is unref'd: the
 * MQTT socket (or mqtt.js's reconnect timer) is what keeps an agent alive,
 * and a forgotten heartbeat must never hold a process open on its own.
 */
export class HeartbeatLoop {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly beat: () => void,
    private readonly random: () => number = Math.random,
  ) {}

  start(): void {
    if (this.timer) return;
    this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.beat();
      if (this.timer) this.schedule();
    }, jitteredInterval(this.intervalMs, this.random));
    this.timer.unref();
  }
}
