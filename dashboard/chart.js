// @ts-check
/**
 * Dispatch rate and dispatch latency over the last 5 minutes, on a canvas:
 * the top band shows WPKs dispatched and finished per second (bars, line),
 * the bottom band latency p50 and p95 in ms (lines), both on the hub's clock.
 * Colours come from CSS custom properties so the stylesheet owns the look.
 */
import { SERIES_WINDOW_MS } from './store.js';

/**
 * @typedef {import('./store.js').Point} Point
 * @typedef {{ grid: string, text: string, dispatched: string, finished: string, p50: string, p95: string }} Colours
 * @typedef {(points: Point[], value: (p: Point) => number|null, x: (t: number) => number, y: (v: number) => number, colour: string) => void} Plot
 */

/** @param {HTMLCanvasElement} canvas */
export function createChart(canvas) {
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  /** @type {Point[]} */
  let last = [];
  let lastNow = 0;

  function colours() {
    const css = getComputedStyle(canvas);
    /** @param {string} name @param {string} fallback */
    const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    return {
      grid: v('--chart-grid', '#e3e7ee'), text: v('--chart-text', '#5b6472'), dispatched: v('--chart-dispatched', '#3b82f6'),
      finished: v('--chart-finished', '#10b981'), p50: v('--chart-p50', '#8b5cf6'), p95: v('--chart-p95', '#f59e0b'),
    };
  }

  /** @param {Point[]} series @param {number} now hub clock */
  function draw(series, now) {
    last = series;
    lastNow = now;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (w === 0 || h === 0) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const c = colours();
    ctx.font = '11px system-ui, sans-serif';
    const left = 44;
    const right = w - 8;
    const end = now;
    const start = end - SERIES_WINDOW_MS;
    /** @param {number} t */
    const x = (t) => left + ((t - start) / SERIES_WINDOW_MS) * (right - left);
    const gap = 18;
    const top = { y0: 8, y1: Math.round(h * 0.5) - gap / 2 };
    const bottom = { y0: Math.round(h * 0.5) + gap / 2, y1: h - 18 };
    const points = series.filter((p) => p.t >= start - 1000);

    const rateMax = niceMax(Math.max(1, ...points.map((p) => Math.max(p.dispatched, p.finished))));
    band(c, top, rateMax, '/s', left, right);
    /** @param {number} v */
    const yr = (v) => top.y1 - (v / rateMax) * (top.y1 - top.y0);
    const barW = Math.max(3, ((right - left) / (SERIES_WINDOW_MS / 1000)) * 0.8);
    ctx.fillStyle = c.dispatched;
    for (const p of points) if (p.dispatched > 0) ctx.fillRect(x(p.t) + 1, yr(p.dispatched), barW, top.y1 - yr(p.dispatched));
    line(points, (p) => p.finished, x, yr, c.finished);

    const latencies = points.flatMap((p) => [p.latency_p50_ms, p.latency_p95_ms]).filter(/** @returns {v is number} */ (v) => typeof v === 'number');
    const latMax = niceMax(Math.max(10, ...latencies));
    band(c, bottom, latMax, 'ms', left, right);
    /** @param {number} v */
    const yl = (v) => bottom.y1 - (v / latMax) * (bottom.y1 - bottom.y0);
    line(points, (p) => p.latency_p95_ms, x, yl, c.p95);
    line(points, (p) => p.latency_p50_ms, x, yl, c.p50);

    ctx.fillStyle = c.text;
    for (let m = 5; m >= 0; m -= 1) {
      // The end labels stay inside the canvas.
      ctx.textAlign = m === 5 ? 'left' : m === 0 ? 'right' : 'center';
      ctx.fillText(m === 0 ? 'now' : `-${m} min`, x(end - m * 60_000), h - 4);
    }
  }

  /**
   * Axis, grid and labels of one band.
   * @param {Colours} c @param {{ y0: number, y1: number }} area @param {number} max @param {string} unit @param {number} left @param {number} right
   */
  function band(c, { y0, y1 }, max, unit, left, right) {
    ctx.strokeStyle = c.grid;
    ctx.fillStyle = c.text;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    for (let i = 0; i <= 2; i += 1) {
      const y = Math.round(y1 - ((y1 - y0) * i) / 2) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(right, y);
      ctx.stroke();
      ctx.fillText(`${formatTick((max * i) / 2)}${i === 2 ? ` ${unit}` : ''}`, left - 4, y + 4);
    }
  }

  /** A line through the points that have a value; a gap where a second has none. @type {Plot} */
  function line(points, value, x, y, colour) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.75;
    ctx.beginPath();
    let pen = false;
    let prevT = -Infinity;
    for (const p of points) {
      const v = value(p);
      // A missing second (the page was disconnected, the hub restarted) is a gap, not a slope.
      if (typeof v !== 'number' || p.t - prevT > 1500) pen = false;
      prevT = p.t;
      if (typeof v !== 'number') continue;
      if (pen) ctx.lineTo(x(p.t), y(v));
      else ctx.moveTo(x(p.t), y(v));
      pen = true;
    }
    ctx.stroke();
    dots(points, value, x, y, colour);
  }

  /** A value with no neighbour draws no line: a dot shows it (one WPK in five minutes still has a latency). @type {Plot} */
  function dots(points, value, x, y, colour) {
    ctx.fillStyle = colour;
    points.forEach((p, i) => {
      const v = value(p);
      if (typeof v !== 'number') return;
      const prev = points[i - 1];
      const next = points[i + 1];
      /** @param {Point|undefined} q */
      const joined = (q) => q !== undefined && typeof value(q) === 'number' && Math.abs(q.t - p.t) <= 1500;
      if (joined(prev) || joined(next)) return;
      ctx.beginPath();
      ctx.arc(x(p.t), y(v), 2.5, 0, Math.PI * 2);
      ctx.fill();
    });
  }

  new ResizeObserver(() => draw(last, lastNow)).observe(canvas);
  return { draw };
}

/** 1, 2, 5 x 10^n at or above v. @param {number} v */
export function niceMax(v) {
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * exp >= v) return m * exp;
  return 10 * exp;
}

/** @param {number} v */
function formatTick(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(v % 1000 === 0 ? 0 : 1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
