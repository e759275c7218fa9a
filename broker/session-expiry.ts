/**
 * A session must not outlive the token that opened it: once the token is no
 * longer accepted (`exp` plus the verifier's clock tolerance), the broker
 * closes the connection (as AWS IoT's custom authorizers do with
 * `disconnectAfterInSeconds`). The client's reconnect then needs a valid
 * token, so an expired or replaced credential stops working within seconds,
 * not at the next network blip.
 */
import type { Client } from 'aedes';

/** setTimeout's limit (~24.8 days): a longer-lived token is re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Closes `client` at `untilS` (epoch seconds: when the verifier stops accepting
 * its token) unless it is gone first; `onExpired` runs just before.
 */
export function closeAtExpiry(client: Client, untilS: number, onExpired: () => void): void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = untilS * 1000 - Date.now();
    if (left > MAX_TIMER_MS) {
      timer = setTimeout(arm, MAX_TIMER_MS);
    } else {
      timer = setTimeout(() => {
        if (client.closed) return;
        onExpired();
        client.close();
      }, Math.max(0, left));
    }
    // A timer per connected client must not keep a stopping broker's process alive.
    timer.unref();
  };
  arm();
  // The timer holds the client: let both go with the connection.
  client.conn.once('close', () => clearTimeout(timer));
}
