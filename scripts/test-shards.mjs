#!/usr/bin/env node
/**
 * `npm test`: the uvu suite in N processes at once (default: one per core,
 * at most 4; EDGEFED_TEST_SHARDS overrides), so a 2-core machine runs it in
 * about half the time. Each shard is a plain uvu run of its files, one file
 * after another as always: a test that leaves a handle open still hangs its
 * shard. Files go to shards longest first (test/timings.json: seconds per
 * file as measured alone; a new file counts as 2 s). Each shard's output is
 * printed whole when it ends, then one summary in uvu's own words (Total,
 * Passed, Skipped, Duration) that adds them up. Exit 1 if any shard failed.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = 'test';
const pattern = /\.test\.ts$/;
const files = readdirSync(path.join(root, dir)).filter((f) => pattern.test(f)).sort();
const timings = JSON.parse(readFileSync(path.join(root, dir, 'timings.json'), 'utf8'));
const wanted = Number(process.env.EDGEFED_TEST_SHARDS ?? Math.min(4, os.availableParallelism()));
const count = Math.max(1, Math.min(files.length, Number.isInteger(wanted) && wanted > 0 ? wanted : 1));

/** Longest first, each to the least loaded shard. */
function plan() {
  const shards = Array.from({ length: count }, () => ({ files: [], seconds: 0 }));
  const weight = (f) => timings[f] ?? 2;
  for (const f of [...files].sort((a, b) => weight(b) - weight(a))) {
    const lightest = shards.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    lightest.files.push(f);
    lightest.seconds += weight(f);
  }
  return shards.filter((s) => s.files.length > 0);
}

const escape = (f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function runShard(shard) {
  return new Promise((resolve) => {
    const args = ['--import', 'tsx', path.join(root, 'node_modules/uvu/bin.js'), dir, `^(${shard.files.map(escape).join('|')})$`];
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('close', (code, signal) => resolve({ out, code: code ?? (signal ? 1 : 0) }));
  });
}

const number = (text, label) => {
  const plain = text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
  const m = [...plain.matchAll(new RegExp(`^\\s*${label}:\\s*([0-9.]+)`, 'gm'))].at(-1);
  return m ? Number(m[1]) : undefined;
};

const started = Date.now();
const results = await Promise.all(plan().map(async (shard) => {
  const r = await runShard(shard);
  process.stdout.write(r.out);
  return r;
}));
let total = 0, passed = 0, skipped = 0, failed = false;
for (const r of results) {
  const t = number(r.out, 'Total'), p = number(r.out, 'Passed'), s = number(r.out, 'Skipped');
  // A shard that printed no totals (a crash, a hang ended from outside) fails the run.
  if (t === undefined || p === undefined) { failed = true; continue; }
  total += t; passed += p; skipped += s ?? 0;
  if (r.code !== 0 || t !== p) failed = true;
}
console.log(`\n  Shards:    ${results.length}\n  Total:     ${total}\n  Passed:    ${passed}\n  Skipped:   ${skipped}\n  Duration:  ${Date.now() - started}ms\n`);
process.exit(failed || total === 0 ? 1 : 0);
