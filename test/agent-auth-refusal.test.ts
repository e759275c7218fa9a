/**
 * Issue 12 §4: an agent the broker refuses at CONNECT (CONNACK 4/5) says
 * why in one line, from its own token (expired at T, not valid before T,
 * another node's, not a JWT, none at all, a capability not granted), and
 * retries on a timer of its own: after a long wait when retrying cannot help,
 * on its backoff (or at nbf) when it may. mqtt.js alone gives up for good
 * after a refusal.
 */
import { decodeJwt, SignJWT } from 'jose';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent, type AgentOptions } from '../agent/index.js';
import { describeFinding, findTokenProblem, retryCannotHelp, type OwnCredentials } from '../agent/token-check.js';
import { loadOrCreateSigningKey, type SigningKey } from '../auth/index.js';
import { jsonLogger } from '../lib/log.js';
import { bounded, type Scope } from './helpers/scope.js';
import { securedFederation, type Secured } from './helpers/secured.js';
import { waitFor } from './helpers/time.js';

const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);
const own: OwnCredentials = { nodeId: 'edge-1', capabilities: ['monitoring', 'camera'], username: 'edge-1', password: undefined };

/** A token as jose signs it, with any claims (times in seconds), signed by `key`. */
async function signed(key: SigningKey, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
}

const unit = suite('agent: what its own token says of a refusal');

unit('each cause is found, in one line that says what to do; retrying helps only for some', async () => {
  const dir = await import('node:fs/promises').then((fs) => fs.mkdtemp('/tmp/edgefed-refusal-'));
  const key = await loadOrCreateSigningKey(dir);
  const s = NOW / 1000;
  const good = { role: 'agent', sub: 'edge-1', caps: ['monitoring', 'camera'], iat: s - 60, exp: s + 3600 };
  const cases: Array<[Record<string, unknown> | string | undefined, string, RegExp, boolean]> = [
    [undefined, 'no_token', /wants a token .* gave none: start it with --token \(made with "edgefed token issue --node edge-1 --capabilities monitoring,camera"\)/, true],
    ['hunter2', 'not_jwt', /is not a JWT/, true],
    [{ ...good, exp: s - 120 }, 'expired', /expired at 2026-12-05T11:58:00\.000Z: issue a new one/, true],
    [{ ...good, nbf: s + 90 }, 'not_yet_valid', /not valid before 2026-12-05T12:01:30\.000Z \(nbf\); is this device's clock right/, false],
    [{ ...good, sub: 'edge-2' }, 'wrong_subject', /is for node "edge-2", not "edge-1"/, true],
    [{ ...good, role: 'operator' }, 'not_an_agent_token', /of role "operator"/, true],
    [{ ...good, caps: ['monitoring'] }, 'capabilities_not_granted', /does not grant camera, which it announces/, false],
    [good, 'looks_valid', /looks right .* signed by a key the hub does not have/, false],
  ];
  for (const [token, kind, line, hopeless] of cases) {
    const password = token === undefined ? undefined : typeof token === 'string' ? token : await signed(key, token);
    const mine = { ...own, password };
    const f = findTokenProblem(mine, (t) => decodeJwt(t), NOW);
    assert.is(f.kind, kind, JSON.stringify(token));
    assert.match(describeFinding(f, mine), line);
    assert.is(retryCannotHelp(f), hopeless, `${kind}: retrying cannot help`);
  }
  const other = findTokenProblem({ ...own, username: 'someone', password: await signed(key, good) }, (t) => decodeJwt(t), NOW);
  assert.is(other.kind, 'wrong_username');
  await import('node:fs/promises').then((fs) => fs.rm(dir, { recursive: true, force: true }));
});

unit.run();

const live = suite('agent: refused by a real broker with --auth jwt');

interface Logged { level: number; msg: string; cause?: string; retry_in_ms?: number }

async function refusedAgent(scope: Scope, sec: Secured, password: string, extra: Partial<AgentOptions> = {}): Promise<Logged[]> {
  const lines: Logged[] = [];
  const agent = await startAgent({
    nodeId: 'edge-1', capabilities: ['monitoring'], username: 'edge-1', password, connect: (o) => sec.fed.broker!.connectInMemory(o),
    logger: jsonLogger('debug', {}, { write: (l: string) => lines.push(JSON.parse(l) as Logged) }), reconnectMinMs: 50, reconnectMaxMs: 100, ...extra,
  });
  scope.defer(() => agent.stop());
  return lines;
}

const refusals = (lines: Logged[]) => lines.filter((l) => /the broker refused this agent/.test(l.msg));

live('an expired token: one line that says when it expired, then retries on the long timer only', bounded(async (scope) => {
  const sec = await securedFederation(scope, { clockToleranceS: 0 });
  const key = await loadOrCreateSigningKey(sec.dir);
  const s = Math.floor(Date.now() / 1000);
  const lines = await refusedAgent(scope, sec, await signed(key, { role: 'agent', sub: 'edge-1', caps: ['monitoring'], iat: s - 120, exp: s - 60 }), { authRetryMs: 300 });
  await waitFor(() => refusals(lines).length >= 4, { timeoutMs: 3000, label: 'retried on the long timer' });
  const errors = refusals(lines).filter((l) => l.level === 50);
  assert.is(errors.length, 1, 'the cause is logged once, the retries at debug');
  assert.match(errors[0]!.msg, /\(Connection refused: Not authorized\): this agent's token expired at \d{4}-\d\d-\d\dT/);
  assert.equal([errors[0]!.cause, errors[0]!.retry_in_ms], ['expired', 300]);
  assert.is(sec.fed.hub.node('edge-1'), undefined);
}, { timeoutMs: 8000 }));

live('a token not valid yet: retried at its nbf, and the agent then joins (mqtt.js alone would have given up)', bounded(async (scope) => {
  const sec = await securedFederation(scope, { clockToleranceS: 0 });
  const key = await loadOrCreateSigningKey(sec.dir);
  const s = Math.floor(Date.now() / 1000);
  const lines = await refusedAgent(scope, sec, await signed(key, { role: 'agent', sub: 'edge-1', caps: ['monitoring'], iat: s, nbf: s + 2, exp: s + 600 }));
  await waitFor(() => sec.fed.hub.node('edge-1')?.status === 'active', { timeoutMs: 5000, label: 'joined once the token became valid' });
  const first = refusals(lines)[0];
  assert.equal(first?.cause, 'not_yet_valid');
  assert.ok((first?.retry_in_ms ?? 0) > 100, `waited for nbf (${first?.retry_in_ms} ms), not the 100 ms backoff`);
}, { timeoutMs: 8000 }));

live.run();
