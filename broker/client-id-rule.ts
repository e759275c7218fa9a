/**
 * MQTT 3.1.1 [MQTT-3.1.3-8]: a client that connects with a zero-length
 * client id must use CleanSession 1; otherwise the server answers CONNACK 2
 * (identifier rejected) and closes. aedes would invent an id and accept, so
 * that a persistent session nobody can ever resume piles up messages. The
 * check needs the CONNECT packet (preConnect); the refusal must be a CONNACK
 * code (authenticate's error.returnCode), so the two hooks share a set.
 */
import type { AedesOptions, Client } from 'aedes';
import type { Logger } from '../lib/log.js';
import type { AuthenticateHook } from './options.js';

type PreConnectHook = NonNullable<AedesOptions['preConnect']>;

export function clientIdRule(authenticate: AuthenticateHook | undefined, log: Logger, refused: () => void): { preConnect: PreConnectHook; authenticate: AuthenticateHook } {
  const anonymousPersistent = new WeakSet<Client>();
  return {
    preConnect(client, packet, callback) {
      if (packet.clientId === '' && packet.clean === false) anonymousPersistent.add(client);
      callback(null, true);
    },
    authenticate(client, username, password, callback) {
      if (anonymousPersistent.delete(client)) {
        refused();
        log.warn({ remote: remoteOf(client) }, 'connection refused: an empty client id needs clean session 1 (MQTT-3.1.3-8); CONNACK 2, identifier rejected');
        callback(Object.assign(new Error('identifier rejected: an empty client id needs clean session'), { returnCode: 2 }), false);
        return;
      }
      if (authenticate) authenticate(client, username, password, callback);
      else callback(null, true);
    },
  };
}

function remoteOf(client: Client): string | undefined {
  const conn = (client as unknown as { conn?: { remoteAddress?: string } }).conn;
  return conn?.remoteAddress;
}
