/**
 * Hand-built MQTT 3.1.1 packets for tests that must send bytes a well-behaved
 * client never would (oversized or streamed bodies, broken headers).
 */

/** Remaining Length as a variable byte integer [MQTT-2.2.3]. */
export function encodeRemainingLength(length: number): Buffer {
  const bytes: number[] = [];
  let rest = length;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    bytes.push(byte);
  } while (rest > 0);
  return Buffer.from(bytes);
}

/** A whole packet: first header byte, remaining length, body. */
export function frame(firstByte: number, body: Uint8Array = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([firstByte]), encodeRemainingLength(body.length), body]);
}

function utf8String(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** CONNECT, protocol level 4, clean session (unless `clean: false`), keepalive 60 s; with a username and password when given. */
export function connectFrame(clientId: string, credentials?: { username: string; password: string }, o: { clean?: boolean } = {}): Buffer {
  const flags = (o.clean === false ? 0 : 0x02) | (credentials ? 0x80 | 0x40 : 0);
  const variableHeader = Buffer.concat([utf8String('MQTT'), Buffer.from([4, flags, 0, 60])]);
  const fields = [utf8String(clientId), ...(credentials ? [utf8String(credentials.username), utf8String(credentials.password)] : [])];
  return frame(0x10, Buffer.concat([variableHeader, ...fields]));
}

/**
 * The start of a QoS 0 PUBLISH of `payloadBytes` bytes, up to the payload, so
 * a test can stream the payload itself in chunks.
 */
export function publishHead(topic: string, payloadBytes: number, retain = false): Buffer {
  const topicBytes = utf8String(topic);
  const firstByte = 0x30 | (retain ? 0x01 : 0);
  return Buffer.concat([Buffer.from([firstByte]), encodeRemainingLength(topicBytes.length + payloadBytes), topicBytes]);
}

/** A complete QoS 0 PUBLISH. */
export function publishFrame(topic: string, payload: Uint8Array, retain = false): Buffer {
  return Buffer.concat([publishHead(topic, payload.length, retain), payload]);
}
