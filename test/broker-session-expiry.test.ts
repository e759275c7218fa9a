/**
 * With `--auth jwt`, a session ends when the token that opened it runs out
 * (`exp` plus the clock tolerance): the broker closes the connection (the node's will tells the hub),
 * counts it, and the same token cannot connect again. A session whose token
 * is still valid is left alone.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { topics } from '../lib/topics.js';
import { closeAll, device, registration } from './helpers/federation.js';
import { bounded } from './helpers/scope.js';
import { securedFederation } from './helpers/secured.js';
import { waitFor, withTimeout } from './helpers/time.js';

const t = topics();

/** Resolves within the first 100 ms of a wall-clock second (bounded: at most one second). */
async function startOfASecond(): Promise<void> {
  while (Date.now() % 1000 >= 100) await new Promise((r) => setTimeout(r, Math.max(1, 1000 - (Date.now() % 1000))));
}

test('the broker closes a session at its token\'s exp; the will marks the node offline; the token is refused afterwards', bounded(async (scope) => {
  // No clock leeway, so the brief token runs out in about 2 s rather than 32.
  const { fed, token } = await securedFederation(scope, { clockToleranceS: 0 });
  // `exp` counts whole seconds from iat = floor(now): a 1 s token minted 970 ms into a second
  // lived 30 ms, and its connect was refused "Not authorized" (the flake of issue 12). Minted
  // at the start of a second, a 2 s token lives 1.9-2 s, plenty to connect and register.
  await startOfASecond();
  const brief = await token({ role: 'agent', subject: 'edge-x', caps: ['monitoring'], ttlSeconds: 2 });
  const lasting = await token({ role: 'agent', subject: 'edge-y', caps: ['monitoring'] });
  const will = (id: string) => ({ topic: t.status(id), payload: Buffer.from(JSON.stringify({ state: 'offline', reason: 'lost', boot_id: `boot-${id}`, ts: Date.now() })), qos: 1 as const, retain: true });
  const x = await device(fed, 'edge-x', { username: 'edge-x', password: brief, will: will('edge-x') });
  const y = await device(fed, 'edge-y', { username: 'edge-y', password: lasting, will: will('edge-y') });
  scope.defer(() => closeAll(x, y));
  for (const [c, id] of [[x, 'edge-x'], [y, 'edge-y']] as const) {
    await c.publishAsync(t.registration(id), JSON.stringify(registration(id)), { qos: 1, retain: true });
  }
  await waitFor(() => fed.hub.node('edge-x')?.status === 'active' && fed.hub.node('edge-y')?.status === 'active', { label: 'both active' });

  await withTimeout(new Promise<void>((resolve) => x.once('close', () => resolve())), 4000, 'edge-x closed when its token ran out');
  await waitFor(() => fed.hub.node('edge-x')?.status === 'offline', { label: 'edge-x offline by its will' });
  assert.is(fed.authStats?.sessionsExpired, 1);
  assert.ok(y.connected, 'a session with a valid token stays');
  assert.is(fed.hub.node('edge-y')?.status, 'active');

  const retry = fed.broker!.connectInMemory({ clientId: 'edge-x', username: 'edge-x', password: brief, reconnectPeriod: 0 });
  scope.defer(() => closeAll(retry));
  const err = await withTimeout(new Promise<Error & { code?: number }>((resolve) => retry.once('error', resolve)), 3000, 'refused');
  assert.is(err.code, 5, 'CONNACK 5: not authorized');
  assert.ok((fed.authStats?.authFailures.expired ?? 0) >= 1);
}, { timeoutMs: 10_000 }));

test.run();
