/**
 * Child process of the HA interop test: N real agents (the library) on one
 * broker, each with the action `work`, which appends `<wpk_id> <attempt>
 * <node>` to RUNS_FILE when it starts and then works `params.ms`. The file
 * is what says whether any work ran twice. Stops on SIGTERM.
 */
import { appendFileSync } from 'node:fs';
import { startAgent, type Agent } from '../../../agent/index.js';
import { silentLogger } from '../../../lib/log.js';

const broker = process.env.BROKER!;
const n = Number(process.env.AGENTS ?? '20');
const runs = process.env.RUNS_FILE!;
/** Node ids are `<PREFIX>-<i>` (default `ha`); BROKER may list several brokers (a cluster). */
const prefix = process.env.PREFIX ?? 'ha';
const heartbeatIntervalMs = Number(process.env.HEARTBEAT_MS ?? '1000');
const reconnectMaxMs = Number(process.env.RECONNECT_MAX_MS ?? '30000');

const agents: Agent[] = [];
for (let i = 0; i < n; i += 1) {
  agents.push(await startAgent({
    nodeId: `${prefix}-${i}`, capabilities: ['work'], brokerUrl: broker, heartbeatIntervalMs, reconnectMaxMs, keepaliveS: 5, logger: silentLogger,
    actions: {
      work: async (params, ctx) => {
        appendFileSync(runs, `${ctx.wpkId} ${ctx.attempt} ${ctx.nodeId}\n`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Number(params.ms ?? 1000));
          ctx.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); });
        });
        return { by: ctx.nodeId };
      },
    },
  }));
}
process.stdout.write('agents started\n');
process.once('SIGTERM', () => void Promise.all(agents.map((a) => a.stop())).finally(() => process.exit(0)));
