/**
 * `edgefed start` as a real child process (through tsx), for crash tests:
 * reads the "edgefed ready" log line to learn the ephemeral ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { withTimeout } from './time.js';
import { CLI_ARGS } from './cli.js';


export interface HubProcess { child: ChildProcess; mqttUrl: string; httpUrl: string; lines: string[]; exited: Promise<number | null> }

export async function spawnHub(args: string[], env: NodeJS.ProcessEnv = {}): Promise<HubProcess> {
  const child = spawn(process.execPath, [...CLI_ARGS, 'start', '--mqtt-port', '0', '--http-port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.on('data', (d: Buffer) => lines.push(d.toString()));
  const ready = new Promise<{ mqtt_url: string; http_url: string }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      try {
        const rec = JSON.parse(line) as { msg?: string; mqtt_url: string; http_url: string };
        if (rec.msg === 'edgefed ready') resolve(rec);
      } catch { /* not a log line */ }
    });
    void exited.then((code) => reject(new Error(`hub exited (${code}) before ready:\n${lines.join('\n')}`)));
  });
  const rec = await withTimeout(ready, 15_000, 'hub process ready').catch((err: Error) => {
    child.kill('SIGKILL'); // never leave an orphan holding the test run open
    throw err;
  });
  return { child, mqttUrl: rec.mqtt_url, httpUrl: rec.http_url, lines, exited };
}

export async function kill9(p: HubProcess): Promise<void> {
  p.child.kill('SIGKILL');
  await withTimeout(p.exited, 5000, 'hub exit after SIGKILL');
}

export async function stopGracefully(p: HubProcess): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode;
  p.child.kill('SIGTERM');
  return withTimeout(p.exited, 10_000, 'hub exit after SIGTERM');
}
