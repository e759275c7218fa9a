/**
 * `edgefed <command>`: loads only the module of the command asked for, so
 * `edgefed agent` never loads the broker, the hub or pino (agent memory budget).
 */
import { CliError } from './args.js';

type Runner = (argv: string[], env: NodeJS.ProcessEnv) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Runner> }> = {
  start: { summary: 'Run the embedded MQTT broker and the hub (registry, HTTP API)', load: async () => (await import('./start.js')).runStart },
  agent: {
    summary: 'Run the edge agent on this device',
    load: async () => {
      (await import('./lean-heap.js')).keepYoungGenerationSmall();
      return (await import('./agent-command.js')).runAgentCommand;
    },
  },
  nodes: { summary: 'List the nodes in the registry', load: async () => (await import('./nodes.js')).runNodes },
  trigger: { summary: 'Create a work package (optionally --wait for its result)', load: async () => (await import('./trigger.js')).runTrigger },
  wpk: { summary: 'List, show or cancel work packages', load: async () => (await import('./wpk.js')).runWpk },
  state: { summary: 'Show or set nodes\' desired state (state show ID, state set ID... --patch JSON)', load: async () => (await import('./state.js')).runState },
  simulate: { summary: 'Run N simulated agents in one process (development, load)', load: async () => (await import('./simulate.js')).runSimulate },
  certs: { summary: 'Write a development CA and certificates for TLS (certs dev --out DIR)', load: async () => (await import('./certs.js')).runCerts },
  store: { summary: 'Move a hub\'s files into PostgreSQL (store migrate --from DIR --to URL)', load: async () => (await import('./store.js')).runStore },
  token: { summary: 'Issue a token (JWT) for a node, an operator or the hub; rotate the signing key', load: async () => (await import('./token.js')).runToken },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Usage: edgefed <command> [options]\n\nCommands:\n${rows.join('\n')}\n\nRun "edgefed <command> --help" for the options of a command.\nEvery option can also be set as an EDGEFED_* environment variable (e.g. --http-port -> EDGEFED_HTTP_PORT).\n`;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${(await import('../lib/version.js')).VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`edgefed: unknown command "${name}".\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await command.load())(rest, env);
  } catch (err) {
    if (err instanceof CliError) {
      // One shape for every refusal: "edgefed <command>: what is wrong", whoever raised it.
      process.stderr.write(`${err.message.startsWith('edgefed') ? err.message : `edgefed ${name}: ${err.message}`}\n`);
      return err.exitCode;
    }
    const message = (err as Error).message ?? String(err);
    process.stderr.write(`edgefed ${name}: ${message}\n`);
    return 1;
  }
}

main(process.argv.slice(2), process.env).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.stderr.write(`${String(err)}\n`); process.exitCode = 1; },
);
