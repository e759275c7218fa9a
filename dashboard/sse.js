// @ts-check
/**
 * A Server-Sent Events parser for streams read with fetch(): EventSource
 * cannot send an Authorization header, so the page reads the bytes itself.
 * Follows the WHATWG "event stream interpretation": lines end with CRLF, LF
 * or CR; `event:` names the event, `data:` lines are joined with "\n", a
 * blank line dispatches, a line starting with ":" is a comment (keepalive).
 */

/**
 * @typedef {{ type: string, data: string }} SseEvent
 * @param {(event: SseEvent) => void} onEvent
 * @returns {{ push(text: string): void, reset(): void }}
 */
export function createSseParser(onEvent) {
  let pending = '';
  /** How much of `pending` is known to hold no line end. */
  let scanned = 0;
  let type = '';
  /** @type {string[]} */
  let data = [];

  /** @param {string} text */
  function line(text) {
    if (text === '') return dispatch();
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
    // `id` and `retry` are not used: every reconnect starts with a snapshot, and the page waits 2 s.
  }

  function dispatch() {
    if (data.length > 0) onEvent({ type: type || 'message', data: data.join('\n') });
    type = '';
    data = [];
  }

  return {
    push(text) {
      pending += text;
      let start = 0;
      // Scans each character once: a 5,000-node snapshot is one long data line over many chunks.
      for (let i = scanned; i < pending.length; i += 1) {
        const c = pending.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        // A CR at the very end may be the first half of a CRLF split across chunks.
        if (c === 13 && i === pending.length - 1) break;
        line(pending.slice(start, i));
        if (c === 13 && pending.charCodeAt(i + 1) === 10) i += 1;
        start = i + 1;
      }
      pending = pending.slice(start);
      scanned = pending.length > 0 && pending.charCodeAt(pending.length - 1) === 13 ? pending.length - 1 : pending.length;
    },
    reset() {
      pending = '';
      scanned = 0;
      type = '';
      data = [];
    },
  };
}
