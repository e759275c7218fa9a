/**
 * A session must not outlive the token that opened it: once the token is no
 * longer accepted (`exp` plus the verifier's clock tolerance), the broker
 * closes the connection (as AWS IoT's custom authorizers do with
 * `disconnectAfterInSeconds`). The client's reconnect then needs a valid
 * token, so an expired or replaced credential stops working within seconds,
 * not at the next network blip.
 */
import type { Client } from 'aedes';
import { atEpochSeconds } from '../lib/at-time.js';

/**
 * Closes `client` at `untilS` (epoch seconds: when the verifier stops accepting
 * its token) unless it is gone first; `onExpired` runs just before.
 */
export function closeAtExpiry(client: Client, untilS: number, onExpired: () => void): void {
  const cancel = atEpochSeconds(untilS, () => {
    if (client.closed) return;
    onExpired();
    client.close();
  });
  // The timer holds the client: let both go with the connection.
  client.conn.once('close', cancel);
}
