/** Every CLI refusal has one shape: `edgefed <command>: what is wrong`, on one line, exit 2. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI_ARGS } from './helpers/cli.js';

const run = promisify(execFile);

async function refused(args: string[]): Promise<{ code: number; err: string }> {
  return run(process.execPath, [...CLI_ARGS, ...args], { timeout: 20_000 }).then(
    () => ({ code: 0, err: '' }),
    (e: { code: number; stderr: string }) => ({ code: e.code, err: e.stderr }),
  );
}

test('bad values and unknown flags of any command: one line naming the command', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['nodes', '--limit', 'abc'], /^edgefed nodes: --limit must be a whole number from 1 to 10000000, got "abc"\n$/],
    [['nodes', '--capabilty', 'x'], /^edgefed nodes: unknown option --capabilty \(did you mean --capability\?\); see edgefed nodes --help\n$/],
    [['start', '--store', 'postgres://u@127.0.0.1:1/db', '--lease-ttl', '1s'], /^edgefed start: --lease-ttl must be a duration from 3s to 10m, got "1s"\n$/],
    [['start', '--will-grace', 'later'], /^edgefed start: --will-grace must be a duration from 0s to 5m, got "later"\n$/],
  ];
  for (const [args, pattern] of cases) {
    const { code, err } = await refused(args);
    assert.is(code, 2, args.join(' '));
    assert.match(err, pattern);
  }
});

test.run();
