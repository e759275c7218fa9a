/**
 * dashboard-feed: what open dashboards cost the hub. A steady fleet of N
 * simulated agents beats every interval (as in `heartbeat`); windows without
 * and with K pages on GET /federation/events alternate in the same run, and
 * the hub's CPU and event-loop delay are compared. Also: the snapshot a page
 * gets on connect (bytes, time to receive), and the stream's bytes per second.
 */
import http from 'node:http';
import { measureWindow, steadyFleet, type WindowFigures } from './heartbeat.js';
import { median, round } from './stats.js';

interface Page { bytes: number; snapshotBytes: number; snapshotMs: number; close(): void }

/** A page reading the stream: counts bytes, notes when the snapshot (the first event) has fully arrived. */
function openPage(url: string): Promise<Page> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const page: Page = { bytes: 0, snapshotBytes: 0, snapshotMs: 0, close: () => req.destroy() };
    let head = '';
    const req = http.get(url, (res) => {
      res.on('data', (chunk: Buffer) => {
        page.bytes += chunk.length;
        if (page.snapshotBytes > 0) return;
        head += chunk.toString('utf8');
        // The snapshot is the first event with data: it ends at the first blank line after "event: snapshot".
        const at = head.indexOf('event: snapshot');
        const end = at >= 0 ? head.indexOf('\n\n', at) : -1;
        if (end < 0) return;
        page.snapshotBytes = Buffer.byteLength(head.slice(at, end));
        page.snapshotMs = performance.now() - t0;
        head = '';
        resolve(page);
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
  });
}

export async function dashboardFeed(n: number, intervalMs: number, windowMs: number, pagesPerWindow: number, pairs: number): Promise<Record<string, unknown>> {
  const fleet = await steadyFleet(n, intervalMs);
  try {
    const url = `${fleet.fed.api.url}/federation/events`;
    const off: WindowFigures[] = [];
    const on: WindowFigures[] = [];
    const streamRates: number[] = [];
    const snapshots: Array<{ bytes: number; ms: number }> = [];
    for (let i = 0; i < pairs; i++) {
      off.push(await measureWindow(fleet.fed, windowMs));
      const pages = await Promise.all(Array.from({ length: pagesPerWindow }, () => openPage(url)));
      for (const p of pages) snapshots.push({ bytes: p.snapshotBytes, ms: p.snapshotMs });
      const before = pages.map((p) => p.bytes);
      const t0 = performance.now();
      on.push(await measureWindow(fleet.fed, windowMs));
      const s = (performance.now() - t0) / 1000;
      pages.forEach((p, j) => streamRates.push((p.bytes - before[j]!) / s));
      for (const p of pages) p.close();
      await new Promise((r) => setTimeout(r, 500));
    }
    const med = (xs: WindowFigures[], k: keyof WindowFigures) => round(median(xs.map((x) => x[k])));
    return {
      nodes: n,
      interval_ms: intervalMs,
      pages: pagesPerWindow,
      pairs,
      window_s: round(windowMs / 1000),
      heartbeats_per_s: med(on, 'heartbeats_per_s'),
      cpu_off_percent: med(off, 'cpu_percent_of_one_core'),
      cpu_on_percent: med(on, 'cpu_percent_of_one_core'),
      cpu_added_points: round(median(on.map((x, i) => x.cpu_percent_of_one_core - off[i]!.cpu_percent_of_one_core))),
      loop_p99_off_ms: med(off, 'event_loop_delay_p99_ms'),
      loop_p99_on_ms: med(on, 'event_loop_delay_p99_ms'),
      loop_max_on_ms: med(on, 'event_loop_delay_max_ms'),
      snapshot_kb: round(median(snapshots.map((x) => x.bytes)) / 1024),
      snapshot_ms: round(median(snapshots.map((x) => x.ms))),
      stream_kb_per_s: round(median(streamRates) / 1024),
      runs_cpu_off: off.map((x) => x.cpu_percent_of_one_core),
      runs_cpu_on: on.map((x) => x.cpu_percent_of_one_core),
    };
  } finally {
    await fleet.close();
  }
}
