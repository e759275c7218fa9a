/**
 * The agent's payload checks are generated from the JSON Schemas
 * (scripts/agent-validators.ts): the committed modules are fresh, load no
 * module beyond their own runtime helpers, and accept exactly what the hub's compiled validators
 * accept (bar the documented leniency: `ts` optional in a received command).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommand, parseHubStatus } from '../agent/commands.js';
import { parseTrigger } from '../agent/triggers.js';
import { MAX_ATTEMPT, MAX_PAYLOAD_BYTES } from '../lib/limits.js';
import { validators } from '../schemas/index.js';
import { agentValidatorsSources } from '../scripts/agent-validators.js';

const generated = suite('agent/generated/');
const DIR = new URL('../agent/generated/', import.meta.url);
const SOURCES = agentValidatorsSources();
const read = (name: string) => readFileSync(new URL(name, DIR), 'utf8');

generated('matches the schemas in use, file by file, and nothing else is there (run npm run agent:validators when this fails)', () => {
  assert.equal(readdirSync(DIR).sort(), Object.keys(SOURCES).sort(), 'the generated files');
  for (const [name, text] of Object.entries(SOURCES)) assert.ok(read(name) === text, `agent/generated/${name} is stale: run npm run agent:validators`);
});

generated('no ajv, no module at all at runtime: types only, and the copied helpers of runtime.ts, which imports types only', () => {
  const importsOf = (name: string) => read(name).split('\n').filter((line) => /^\s*import\b|\brequire\(/.test(line));
  const runtime = importsOf('runtime.ts');
  assert.ok(runtime.length > 0 && runtime.every((line) => /^import type /.test(line)), runtime.join('\n'));
  for (const name of Object.keys(SOURCES).filter((n) => n !== 'runtime.ts')) {
    const imports = importsOf(name);
    assert.ok(imports.length > 0 && imports.every((line) => /^import type /.test(line) || / from '\.\/runtime\.js';$/.test(line)), `${name}: ${imports.join('\n')}`);
  }
});

const parse = (value: unknown) => Buffer.from(JSON.stringify(value));

generated('commands: the hub\'s schema decides, with ts optional', () => {
  const cases: Array<Record<string, unknown>> = [
    { command: 'rebirth', ts: 1 }, { command: 'rebirth', ts: -1 }, { command: 'rebirth', ts: 1, extra: 1 },
    { command: 'cancel', wpk_id: 'w', attempt: 1, ts: 1 }, { command: 'cancel', wpk_id: 'w', attempt: MAX_ATTEMPT + 1, ts: 1 },
    { command: 'cancel', wpk_id: 'a/b', attempt: 1, ts: 1 }, { command: 'cancel', wpk_id: 'w', attempt: 1.5, ts: 1 },
    { command: 'cancel', attempt: 1, ts: 1 }, { command: 'cancel', wpk_id: 'w', attempt: 1, ts: 1, wpk: 'x' },
    { command: 'explode', ts: 1 }, { ts: 1 },
  ];
  for (const value of cases) {
    assert.equal(parseCommand(parse(value), 5).ok, validators.command(value).ok, JSON.stringify(value));
    const { ts: _ts, ...untimed } = value;
    assert.equal(parseCommand(parse(untimed), 5).ok, validators.command({ ...untimed, ts: 5 }).ok, JSON.stringify(untimed));
  }
});

generated('hub status: the hub\'s schema decides', () => {
  const base = { state: 'online', boot_id: 'Ab_-1', ts: 1, version: '0.1.0' };
  const cases: unknown[] = [
    base, { ...base, state: 'offline', reason: 'lost' }, { ...base, state: 'sleepy' }, { ...base, boot_id: 'a.b' },
    { ...base, boot_id: 'x'.repeat(65) }, { ...base, ts: '1' }, { ...base, extra: true }, { state: 'online', boot_id: 'b' },
    { ...base, reason: 'bored' }, { ...base, version: '' },
  ];
  for (const value of cases) assert.equal(parseHubStatus(parse(value)).ok, validators.hubStatus(value).ok, JSON.stringify(value));
});

generated('reasons name the command, the field and the rule', () => {
  const reason = (text: string) => {
    const parsed = parseCommand(Buffer.from(text), 5);
    return parsed.ok ? 'accepted' : parsed.reason;
  };
  assert.is(reason('{"command":"cancel","wpk_id":"w","attempt":0}'), 'cancel: attempt: must be >= 1');
  assert.is(reason('{"command":"cancel","attempt":1}'), 'cancel: payload: missing required field "wpk_id"');
  assert.is(reason('{"command":"rebirth","ts":"soon"}'), 'rebirth: ts: must be integer');
  assert.is(reason('{"command":"explode"}'), 'unknown command "explode"');
  assert.is(reason('{}'), 'missing "command"');
  assert.match(reason('[]'), /must be a JSON object, got an array/);
  assert.is(reason('x'.repeat(MAX_PAYLOAD_BYTES + 1)), `payload of ${MAX_PAYLOAD_BYTES + 1} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  const trigger = parseTrigger(parse({ wpk_id: 'w', capability: 'c', action: 'a', mode: 'one', attempt: 1, created_at: 0, deadline: 1, surprise: 1 }));
  assert.equal(trigger, { ok: false, reason: 'payload: unknown field "surprise"' });
});

generated.run();
