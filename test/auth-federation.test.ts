/**
 * `auth: jwt` for a whole federation: the hub mints its own token, agents
 * connect with theirs, the broker enforces each role's topics and the HTTP
 * API wants a bearer token with the right role and scope.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent, type AgentOptions } from '../agent/index.js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { identityStoreFile, issueToken, loadOrCreateSigningKey } from '../auth/index.js';
import type { WpkRecord } from '../hub/wpk/types.js';
import { silentLogger } from '../lib/log.js';
import { federation } from './helpers/federation.js';
import { bounded, type Scope } from './helpers/scope.js';
import { securedFederation, type Secured } from './helpers/secured.js';
import { sleep, waitFor, withTimeout } from './helpers/time.js';
import { capturingLogger, type LogLine } from './helpers/logs.js';

const test = suite('auth: jwt across broker, hub and HTTP API');

type Ctx = Secured;
const secured = (scope: Scope) => securedFederation(scope);

async function agent(scope: Scope, ctx: Ctx, nodeId: string, extra: Partial<AgentOptions> = {}) {
  const a = await startAgent({
    nodeId, capabilities: ['basic-actions'], connect: (o) => ctx.fed.broker!.connectInMemory(o), heartbeatIntervalMs: 200,
    reconnectMinMs: 50, reconnectMaxMs: 100, logger: silentLogger, ...extra,
  });
  scope.defer(() => a.stop());
  return a;
}

async function http<T>(ctx: Ctx, method: string, p: string, token?: string, body?: unknown): Promise<{ status: number; body: T; auth: string | null }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await withTimeout(fetch(`${ctx.fed.api.url}${p}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }), 3000, `${method} ${p}`);
  return { status: res.status, body: (await res.json()) as T, auth: res.headers.get('www-authenticate') };
}

test('the hub connects with the token it mints; an agent with its token registers and runs a WPK an operator with wpk:write created', bounded(async (scope) => {
  const ctx = await secured(scope);
  await waitFor(() => ctx.fed.hub.connected, { label: 'hub connected with its own token' });
  const token = await ctx.token({ role: 'agent', subject: 'edge-1', caps: ['basic-actions'] });
  await agent(scope, ctx, 'edge-1', { username: 'edge-1', password: token });
  await waitFor(() => ctx.fed.hub.node('edge-1')?.status === 'active', { label: 'edge-1 active' });
  const writer = await ctx.token({ role: 'operator', scopes: ['wpk:write'] });
  const created = await http<WpkRecord>(ctx, 'POST', '/federation/wpk', writer, { capability: 'basic-actions', action: 'echo', params: { ok: 1 } });
  assert.is(created.status, 201);
  await waitFor(() => ctx.fed.hub.wpks.get(created.body.wpk_id)?.state === 'succeeded', { label: 'WPK succeeded' });
}, { timeoutMs: 10_000 }));

test('without a token, or with caps beyond it, an agent does not join', bounded(async (scope) => {
  const ctx = await secured(scope);
  await agent(scope, ctx, 'anon-1');
  const narrow = await ctx.token({ role: 'agent', subject: 'edge-2', caps: ['monitoring'] });
  const logs: LogLine[] = [];
  const logger = capturingLogger(logs);
  await agent(scope, ctx, 'edge-2', { username: 'edge-2', password: narrow, capabilities: ['monitoring', 'basic-actions'], logger });
  // The broker's refusal of the registration is what proves it was dropped (not a pause).
  const refusedPublishes = () => Object.values(ctx.fed.authStats?.publishRefusals ?? {}).reduce((a, b) => a + (b ?? 0), 0);
  await waitFor(() => refusedPublishes() >= 1, { label: 'the registration refused by the broker' });
  const said = await waitFor(() => logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('the broker refused subscriptions')), { label: 'the agent says why it gets no work' });
  assert.equal(said.refused, ['edgefed/v1/wpk/basic-actions/trigger', 'edgefed/v1/wpk/basic-actions/trigger/edge-2']);
  assert.match(String(said.msg), /--capabilities/);
  assert.is(ctx.fed.hub.node('anon-1'), undefined, 'no token: refused at CONNECT');
  assert.is(ctx.fed.hub.node('edge-2'), undefined, 'a registration announcing caps beyond the token is dropped');
  assert.ok((ctx.fed.authStats?.authFailures.no_credentials ?? 0) >= 1);
  assert.ok((ctx.fed.authStats?.publishRefusals.caps_exceeded ?? 0) >= 1);
  const health = (await (await fetch(`${ctx.fed.api.url}/health`)).json()) as { broker: { auth: { authFailures: Record<string, number> } } };
  assert.ok((health.broker.auth.authFailures.no_credentials ?? 0) >= 1, '/health shows the broker\'s refusals');
}, { timeoutMs: 10_000 }));

test('HTTP: 401 without a token (with WWW-Authenticate), /health open, operators read, only wpk:write writes, agents see only themselves', bounded(async (scope) => {
  const ctx = await secured(scope);
  const reader = await ctx.token({ role: 'operator' });
  const agentToken = await ctx.token({ role: 'agent', subject: 'edge-3', caps: ['basic-actions'] });
  assert.is((await http(ctx, 'GET', '/health')).status, 200);
  const anon = await http<{ error: { code: string } }>(ctx, 'GET', '/federation/nodes');
  assert.equal([anon.status, anon.body.error.code, anon.auth], [401, 'EDGEFED_ERR_UNAUTHENTICATED', 'Bearer']);
  assert.is((await http(ctx, 'GET', '/federation/nodes', 'not.a.token')).status, 401);
  assert.is((await http(ctx, 'GET', '/federation/nodes', reader)).status, 200);
  const denied = await http<{ error: { message: string } }>(ctx, 'POST', '/federation/wpk', reader, { capability: 'basic-actions', action: 'echo' });
  assert.is(denied.status, 403);
  assert.match(denied.body.error.message, /wpk:write/);
  assert.is((await http(ctx, 'POST', '/federation/nodes/edge-3/heartbeat', agentToken, {})).status, 404, 'allowed (the node is simply not registered)');
  assert.is((await http(ctx, 'POST', '/federation/nodes/edge-4/heartbeat', agentToken, {})).status, 403);
  assert.is((await http(ctx, 'GET', '/federation/wpk', agentToken)).status, 403);
  assert.ok((ctx.fed.hub.counters().refusals.not_allowed ?? 0) >= 5, 'every refusal is counted');
  assert.is(ctx.fed.hub.wpks.list().length, 0, 'nothing was created');
}, { timeoutMs: 10_000 }));

test('tokens signed elsewhere with RS256 (the Vault setup: --jwks-file --jwks-alg RS256) are accepted beside the hub\'s EdDSA ones', bounded(async (scope) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-auth-rs-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwksFile = path.join(dir, 'vault-keys.json');
  await fs.writeFile(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'vault-1', alg: 'RS256', use: 'sig' }] }));
  const fed = await federation({ dataDir: path.join(dir, 'data'), auth: { jwksFile, algorithms: ['RS256'] } });
  scope.defer(() => fed.stop());
  const now = Math.floor(Date.now() / 1000);
  const vaultToken = await new SignJWT({ role: 'operator' }).setProtectedHeader({ alg: 'RS256', kid: 'vault-1' })
    .setSubject('alice').setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey);
  const res = await fetch(`${fed.api.url}/federation/nodes`, { headers: { authorization: `Bearer ${vaultToken}` } });
  assert.is(res.status, 200);
  const own = await issueToken({ role: 'operator', ttlSeconds: 600 }, await loadOrCreateSigningKey(path.join(dir, 'data')));
  assert.is((await fetch(`${fed.api.url}/federation/nodes`, { headers: { authorization: `Bearer ${own}` } })).status, 200);
  const forged = `${vaultToken.slice(0, vaultToken.lastIndexOf('.'))}.AAAA`;
  assert.is((await fetch(`${fed.api.url}/federation/nodes`, { headers: { authorization: `Bearer ${forged}` } })).status, 401);
}, { timeoutMs: 10_000 }));

test('a restarted hub admits the tokens it verified before (its own and external ones) without checking a signature', bounded(async (scope) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-auth-restart-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwksFile = path.join(dir, 'vault-keys.json');
  await fs.writeFile(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'vault-1', alg: 'RS256', use: 'sig' }] }));
  const dataDir = path.join(dir, 'data');
  const options = { dataDir, auth: { jwksFile, algorithms: ['RS256'] } };
  const now = Math.floor(Date.now() / 1000);
  const vaultToken = await new SignJWT({ role: 'operator' }).setProtectedHeader({ alg: 'RS256', kid: 'vault-1' })
    .setSubject('alice').setIssuedAt(now).setExpirationTime(now + 600).sign(privateKey);
  const own = await issueToken({ role: 'operator', ttlSeconds: 600 }, await loadOrCreateSigningKey(dataDir));
  const status = async (fed: { api: { url: string } }, token: string) => (await fetch(`${fed.api.url}/federation/nodes`, { headers: { authorization: `Bearer ${token}` } })).status;

  let first: Awaited<ReturnType<typeof federation>> | undefined = await federation(options);
  scope.defer(() => first?.stop());
  assert.equal([await status(first, own), await status(first, vaultToken)], [200, 200]);
  await first.stop();
  first = undefined;
  for (const source of ['own', 'external'] as const) {
    const text = await fs.readFile(identityStoreFile(dataDir, source), 'utf8');
    assert.not.ok(text.includes(own) || text.includes(vaultToken), 'no token in the file');
  }

  const second = await federation(options);
  scope.defer(() => second.stop());
  await waitFor(() => second.hub.connected, { label: 'hub connected' });
  const subtle = globalThis.crypto.subtle;
  const verify = subtle.verify;
  let checks = 0;
  subtle.verify = function (this: SubtleCrypto, ...args: Parameters<SubtleCrypto['verify']>) { checks += 1; return verify.apply(this, args); } as SubtleCrypto['verify'];
  scope.defer(() => { subtle.verify = verify; });
  assert.equal([await status(second, own), await status(second, vaultToken)], [200, 200]);
  assert.is(checks, 0, 'both admitted from the persisted identities');
  const forged = `${vaultToken.slice(0, vaultToken.lastIndexOf('.'))}.AAAA`;
  assert.is(await status(second, forged), 401, 'another token string is verified, and refused');
}, { timeoutMs: 10_000 }));

test('a token from an extra key source that is down is answered CONNACK 3 (retry later), not 4', bounded(async (scope) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-auth-down-'));
  scope.defer(() => fs.rm(dir, { recursive: true, force: true }));
  // Port 9 (discard) on loopback: nothing listens there, the fetch fails at once.
  const fed = await federation({ dataDir: dir, auth: { jwksUrl: 'http://127.0.0.1:9/v1/identity/oidc/.well-known/keys' } });
  scope.defer(() => fed.stop());
  const otherDir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgefed-auth-other-'));
  scope.defer(() => fs.rm(otherDir, { recursive: true, force: true }));
  const foreign = await issueToken({ role: 'operator', ttlSeconds: 600 }, await loadOrCreateSigningKey(otherDir));
  const client = fed.broker!.connectInMemory({ clientId: 'op-1', username: 'operator', password: foreign, reconnectPeriod: 0 });
  scope.defer(() => client.endAsync(true));
  const code = await withTimeout(new Promise<number | undefined>((resolve) => {
    client.once('error', (err) => resolve((err as { code?: number }).code));
    client.once('connect', () => resolve(0));
  }), 5000, 'CONNACK');
  assert.is(code, 3);
}, { timeoutMs: 10_000 }));

test.run();
