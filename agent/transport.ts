/**
 * The default way to reach the broker. For mqtt:// and mqtts:// the agent
 * opens the TCP/TLS socket itself and hands it to `new MqttClient`, because
 * `mqtt.connect()` loads every transport it knows on first use (ws, socks,
 * ip-address: ~4-7 MB of RSS measured by bench/agent-rss.ts) and an edge agent
 * needs one. WebSocket URLs still go through `mqtt.connect`, which pays that
 * cost only when it is actually used. node:tls (~2 MB) is loaded only for mqtts. Not supported on this path: the
 * MQTTJS_SOCKS_PROXY variable (give a `connect` factory for that).
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { IClientOptions, MqttClient as Client } from 'mqtt';
// The client class alone: mqtt's main entry also loads every transport and
// builds the browser shims (~4 MB more resident memory on a device).
import clientModule from 'mqtt/lib/client';

const MqttClient = clientModule.default;
type MqttClient = Client;

export type ClientFactory = (opts: IClientOptions) => MqttClient;

/**
 * `brokerUrl` may list several brokers (`mqtt://a:1883,mqtt://b:1883`, the
 * nodes of a cluster): the first connect goes to the first, and each
 * reconnect to the next one, round the list. A broker node that died is
 * left at the next attempt; the agent's backoff paces the round.
 */
export async function defaultFactory(brokerUrl: string): Promise<ClientFactory> {
  const urls = brokerUrl.split(',').map((u) => new URL(u.trim()));
  const first = urls[0]!;
  const secure = (url: URL) => url.protocol === 'mqtts:' || url.protocol === 'ssl:';
  if (urls.length === 1 && !secure(first) && first.protocol !== 'mqtt:' && first.protocol !== 'tcp:') {
    const { connect } = await import('mqtt');
    return (opts) => connect(brokerUrl, opts);
  }
  const tlsConnect = urls.some(secure) ? (await import('node:tls')).connect : undefined;
  return (opts) => {
    let attempt = 0;
    const merged = { ...urlCredentials(first), ...opts };
    // mqtt.js calls the builder again for every reconnect.
    // noDelay: updates are small packets that should leave now (Nagle cost 40 ms stalls, see bench/RESULTS.md).
    return new MqttClient(() => {
      const url = urls[attempt++ % urls.length]!;
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1'); // IPv6 literals arrive bracketed
      const port = url.port === '' ? (secure(url) ? 8883 : 1883) : Number(url.port);
      const o = { ...urlCredentials(url), ...opts };
      return secure(url) && tlsConnect ? tlsSocket(tlsConnect, host, port, o) : net.connect({ host, port, noDelay: true });
    }, merged);
  };
}

/** `mqtts://user:secret@host` works as with mqtt.connect; explicit options win. */
function urlCredentials(url: URL): Partial<IClientOptions> {
  const out: Partial<IClientOptions> = {};
  if (url.username) out.username = decodeURIComponent(url.username);
  if (url.password) out.password = decodeURIComponent(url.password);
  return out;
}

function tlsSocket(tlsConnect: typeof tls.connect, host: string, port: number, opts: IClientOptions): tls.TLSSocket {
  const socket = tlsConnect({
    host,
    port,
    // SNI must not carry an IP address (RFC 6066 §3).
    servername: opts.servername ?? (net.isIP(host) === 0 ? host : undefined),
    ca: opts.ca,
    cert: opts.cert,
    key: opts.key,
    // Verify the broker unless explicitly told not to: an agent trusts its commands to it.
    rejectUnauthorized: opts.rejectUnauthorized !== false,
    ALPNProtocols: opts.ALPNProtocols as tls.ConnectionOptions['ALPNProtocols'],
  });
  socket.setNoDelay(true);
  return socket;
}
