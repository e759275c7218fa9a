/**
 * `npm run bench [scenario] [--nodes N] [...]`. Scenarios:
 *   registration-storm --nodes 1000|5000 [--runs 5]
 *   heartbeat --nodes 5000 --interval 1s [--window 20s]
 *   agent-rss                (separate script: bench/agent-rss.ts)
 * With no scenario, runs the set. Prints one JSON line per result.
 */
import { parseDuration } from '../lib/duration.js';
import { heartbeat } from './heartbeat.js';
import { registrationStorm } from './registration-storm.js';
import { arg, machine } from './stats.js';

const argv = process.argv.slice(2);
const scenario = argv[0] && !argv[0].startsWith('--') ? argv[0] : 'all';

function print(name: string, result: Record<string, number | number[]>): void {
  process.stdout.write(`${JSON.stringify({ scenario: name, machine: machine(), date: new Date().toISOString(), ...result })}\n`);
}

async function storm(nodes: number): Promise<void> {
  print('registration-storm', await registrationStorm(nodes, Number(arg(argv, 'runs', '5'))));
}

async function beats(): Promise<void> {
  const nodes = Number(arg(argv, 'nodes', '5000'));
  print('heartbeat', await heartbeat(nodes, parseDuration(arg(argv, 'interval', '1s')), parseDuration(arg(argv, 'window', '20s'))));
}

if (scenario === 'registration-storm') await storm(Number(arg(argv, 'nodes', '1000')));
else if (scenario === 'heartbeat') await beats();
else if (scenario === 'agent-rss') await import('./agent-rss.js');
else if (scenario === 'all') {
  await storm(1000);
  await storm(5000);
  await beats();
  await import('./agent-rss.js');
} else {
  process.stderr.write(`unknown scenario "${scenario}": registration-storm, heartbeat, agent-rss\n`);
  process.exitCode = 2;
}
