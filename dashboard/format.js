// @ts-check
/** Text for the operator, and the two DOM helpers every view uses (text only, never HTML). */

/** "just now", "42 s ago", "3 min ago", "2 h ago", "5 d ago"; "never" for null. @param {number|null} t @param {number} now */
export function ago(t, now) {
  if (t === null || t === undefined) return 'never';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 2) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** "850 ms", "4.2 s", "3 min 5 s", "2 h 10 min". @param {number} ms */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Load as reported: 0..1 reads as a fraction, anything else as is. @param {number|null} load */
export function loadText(load) {
  if (load === null || load === undefined || !Number.isFinite(load)) return '–';
  return load.toFixed(2);
}

/** @param {number} n */
export function count(n) {
  return Number.isFinite(n) ? n.toLocaleString('en-US') : '–';
}

/** Writes text only when it changed: DOM writes, not string compares, are what cost. @param {Element} el @param {string} text */
export function setText(el, text) {
  const cached = /** @type {Element & { __text?: string }} */ (el);
  if (cached.__text !== text) {
    el.textContent = text;
    cached.__text = text;
  }
}

/** A new element with a class and optional text (as text, never parsed). @param {string} tag @param {string} [className] @param {string} [text] */
export function make(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A class name suffix only from a known list, so data never picks a class. @param {string} value @param {readonly string[]} known */
export function known(value, known) {
  return known.includes(value) ? value : 'unknown';
}
