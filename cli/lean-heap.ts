/**
 * Keeps an agent's young generation from growing. Start-up (compiling mqtt.js)
 * makes V8 grow the new space to ~16 MB, and an idle agent keeps it: about
 * 5 MB of resident memory on a device for nothing. The growth factor is read
 * each time V8 considers growing, so it can still be set at run time, unlike
 * --max-semi-space-size (measured: bench/agent-rss.ts, bench/RESULTS.md).
 * Only the agent command does this; throughput-bound commands keep V8's default.
 */
import v8 from 'node:v8';

export function keepYoungGenerationSmall(): void {
  if (process.env.EDGEFED_AGENT_DEFAULT_HEAP === '1') return; // escape hatch for tuning
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}
