/**
 * A Server-Sent Events reader for tests: what a dashboard page would get
 * from GET /federation/events, as a list of named events that grows.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { withTimeout, waitFor } from './time.js';

export interface SseEvent { event: string; data: unknown }

export interface SseStream {
  readonly events: SseEvent[];
  /** Waits for an event of this name (after index `from`) whose data passes `match`. */
  next<T>(event: string, match?: (data: T) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<T>;
  /** Settles when the hub ends the stream (or it is closed here). */
  readonly ended: Promise<void>;
  close(): void;
}

export async function openSse(url: string, token?: string): Promise<SseStream> {
  const abort = new AbortController();
  const res = await withTimeout(fetch(url, { signal: abort.signal, headers: token ? { authorization: `Bearer ${token}` } : {} }), 3000, `GET ${url}`);
  if (res.status !== 200 || !res.body) {
    abort.abort();
    throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text().catch(() => '')}`);
  }
  const events: SseEvent[] = [];
  const ended = pump(res.body, events).catch(() => undefined);
  return {
    events,
    ended,
    next<T>(event: string, match: (data: T) => boolean = () => true, opts: { from?: number; timeoutMs?: number } = {}) {
      const from = opts.from ?? 0;
      return waitFor(() => events.slice(from).find((e) => e.event === event && match(e.data as T))?.data as T | undefined, {
        timeoutMs: opts.timeoutMs ?? 3000, label: `SSE event ${event}`,
      });
    },
    close: () => abort.abort(),
  };
}

interface SseParser { push(text: string): void }
type CreateSseParser = (onEvent: (e: { type: string; data: string }) => void) => SseParser;

/** The page's own parser (dashboard/sse.js, plain browser JS): the tests read the stream as the dashboard does. */
const parserModule = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dashboard', 'sse.js')).href;

async function pump(body: ReadableStream<Uint8Array>, events: SseEvent[]): Promise<void> {
  const { createSseParser } = (await import(parserModule)) as { createSseParser: CreateSseParser };
  const parser = createSseParser(({ type, data }) => events.push({ event: type, data: JSON.parse(data) as unknown }));
  const decoder = new TextDecoder();
  for await (const chunk of body) parser.push(decoder.decode(chunk, { stream: true }));
}
