/**
 * Work packages over HTTP, end to end against a whole federation: create,
 * refusals (which change nothing and are counted), list filters, lookup and
 * cancel. No node has the capabilities used here, so WPKs stay open.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { validators } from '../schemas/index.js';
import type { Federation } from '../server/federation.js';
import { WPK_STATES, type WpkRecord } from '../hub/wpk/types.js';
import { isValidId } from '../lib/ids.js';
import { api, federation, post } from './helpers/federation.js';
import { withTimeout } from './helpers/time.js';

const test = suite<{ fed?: Federation }>('hub: work packages over HTTP');
test.after.each(async (ctx) => { await ctx.fed?.stop(); ctx.fed = undefined; });
const T = (label: string, fn: (ctx: { fed?: Federation }) => Promise<void>) => test(label, (ctx) => withTimeout(fn(ctx), 8000, label));

interface ErrorBody { error: { code: string; message: string; details?: string[] } }
interface WpkList { count: number; wpks: WpkRecord[] }

const create = (fed: Federation, body: unknown) => api<WpkRecord & ErrorBody>(fed, '/federation/wpk', post(body));
const cancel = (fed: Federation, id: string) => api<WpkRecord & ErrorBody>(fed, `/federation/wpk/${encodeURIComponent(id)}/cancel`, { method: 'POST' });

T('POST /federation/wpk: 201 with the new record; GET /federation/wpk/:id answers the same record', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const before = Date.now();
  const deadline = before + 600_000;
  const res = await create(fed, {
    capability: 'monitoring', action: 'collect-metrics', params: { window: '5m' }, mode: 'one', nodes: ['edge-001'],
    labels: { site: 'berlin' }, timeout_ms: 30_000, deadline, max_attempts: 2,
  });
  assert.is(res.status, 201);
  const w = res.body;
  assert.ok(isValidId(w.wpk_id), `wpk_id "${w.wpk_id}" is a valid id (a topic level)`);
  assert.equal(
    { capability: w.capability, action: w.action, params: w.params, mode: w.mode, nodes: w.nodes, labels: w.labels, timeout_ms: w.timeout_ms, deadline: w.deadline, max_attempts: w.max_attempts },
    { capability: 'monitoring', action: 'collect-metrics', params: { window: '5m' }, mode: 'one', nodes: ['edge-001'], labels: { site: 'berlin' }, timeout_ms: 30_000, deadline, max_attempts: 2 },
  );
  assert.ok((WPK_STATES as readonly string[]).includes(w.state));
  assert.ok(w.created_at >= before && w.created_at <= Date.now());
  assert.is(w.finished_at, null);
  assert.ok(Array.isArray(w.executions));
  const got = await api<WpkRecord>(fed, `/federation/wpk/${w.wpk_id}`);
  assert.is(got.status, 200);
  assert.equal(got.body, { ...fed.hub.wpks.get(w.wpk_id), rollout_rate_per_minute: null }, 'the HTTP record is the service record, plus the rollout rate it derives');
  const checked = validators.apiWpk(got.body);
  assert.ok(checked.ok, `the answer matches schemas/json/api-wpk.json: ${checked.ok ? '' : checked.errors.join('; ')}`);
  assert.not.ok(validators.apiWpk({ ...got.body, state: 'paused' }).ok, 'and the schema can tell a wrong one');
  assert.is(got.body.wpk_id, w.wpk_id);
});

T('POST /federation/wpk: only capability and action are required; the hub fills the rest', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const res = await create(fed, { capability: 'monitoring', action: 'echo' });
  assert.is(res.status, 201);
  assert.is(res.body.mode, 'one');
  assert.equal(res.body.params, {});
  assert.ok(res.body.deadline > res.body.created_at, 'a default deadline in the future');
  assert.ok(Number.isInteger(res.body.timeout_ms) && res.body.timeout_ms > 0);
  assert.ok(res.body.max_attempts >= 1);
});

T('bad bodies: 400 not JSON, 422 unknown field / past deadline / bad capability; nothing is created and each is counted', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const notJson = await create(fed, '{"capability":');
  assert.is(notJson.status, 400);
  assert.is(notJson.body.error.code, 'EDGEFED_ERR_BAD_JSON');
  const unknown = await create(fed, { capability: 'monitoring', action: 'echo', colour: 'red' });
  assert.is(unknown.status, 422);
  assert.is(unknown.body.error.code, 'EDGEFED_ERR_SCHEMA');
  assert.ok((unknown.body.error.details ?? []).some((d) => d.includes('unknown field "colour"')), 'names the field');
  const past = await create(fed, { capability: 'monitoring', action: 'echo', deadline: Date.now() - 1000 });
  assert.is(past.status, 422);
  assert.match(past.body.error.message, /deadline/);
  const badId = await create(fed, { capability: 'mon/itoring', action: 'echo' });
  assert.is(badId.status, 422);
  assert.ok((badId.body.error.details ?? []).some((d) => d.startsWith('capability')), 'names the field');
  assert.equal(fed.hub.wpks.list(), []);
  assert.is((await api<WpkList>(fed, '/federation/wpk')).body.count, 0);
  assert.is(fed.hub.counters().refusals.not_json, 1);
  assert.is(fed.hub.counters().refusals.schema, 3);
  const health = await api<{ refusals_total: number }>(fed, '/health');
  assert.is(health.body.refusals_total, 4);
});

T('GET /federation/wpk: newest first, filtered by state, capability and limit; a bad filter is a 400 listing the states', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const a = (await create(fed, { capability: 'monitoring', action: 'a' })).body;
  const b = (await create(fed, { capability: 'gpu', action: 'b' })).body;
  const c = (await create(fed, { capability: 'monitoring', action: 'c' })).body;
  assert.is((await cancel(fed, b.wpk_id)).status, 200);
  const ids = async (q: string) => (await api<WpkList>(fed, `/federation/wpk${q}`)).body.wpks.map((w) => w.wpk_id);
  assert.equal(await ids(''), [c.wpk_id, b.wpk_id, a.wpk_id]);
  assert.equal(await ids('?state=canceled'), [b.wpk_id]);
  assert.equal(await ids(`?state=${a.state}`), [c.wpk_id, a.wpk_id]);
  assert.equal(await ids('?capability=monitoring'), [c.wpk_id, a.wpk_id]);
  assert.equal(await ids('?capability=monitoring&limit=1'), [c.wpk_id]);
  const list = await api<WpkList>(fed, '/federation/wpk?state=succeeded');
  assert.equal(list.body, { count: 0, wpks: [], next: null });
  const bad = await api<ErrorBody>(fed, '/federation/wpk?state=sleepy');
  assert.is(bad.status, 400);
  assert.is(bad.body.error.code, 'EDGEFED_ERR_BAD_FILTER');
  assert.match(bad.body.error.message, new RegExp(WPK_STATES.join(', ')));
  for (const limit of ['0', '1001', 'ten', '1.5']) {
    assert.is((await api<ErrorBody>(fed, `/federation/wpk?limit=${limit}`)).status, 400, `limit=${limit}`);
  }
});

T('GET /federation/wpk/:id: 404 EDGEFED_ERR_WPK_NOT_FOUND for an unknown or impossible id', async (ctx) => {
  const fed = (ctx.fed = await federation());
  for (const path of ['/federation/wpk/wpk_nope', '/federation/wpk/not%20an%20id']) {
    const res = await api<ErrorBody>(fed, path);
    assert.is(res.status, 404, path);
    assert.is(res.body.error.code, 'EDGEFED_ERR_WPK_NOT_FOUND');
  }
  const wrongMethod = await api<ErrorBody>(fed, '/federation/wpk/wpk_nope', { method: 'DELETE' });
  assert.is(wrongMethod.status, 405);
});

T('POST /federation/wpk/:id/cancel: 200 with the canceled record, then 409 (already finished); 404 when unknown', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const w = (await create(fed, { capability: 'monitoring', action: 'echo' })).body;
  const first = await cancel(fed, w.wpk_id);
  assert.is(first.status, 200);
  assert.is(first.body.wpk_id, w.wpk_id);
  assert.is(first.body.state, 'canceled');
  assert.type(first.body.finished_at, 'number');
  const again = await cancel(fed, w.wpk_id);
  assert.is(again.status, 409);
  assert.match(again.body.error.code, /^EDGEFED_ERR_/);
  assert.match(again.body.error.message, /canceled/, 'says which state it ended in');
  assert.is(fed.hub.wpks.get(w.wpk_id)?.state, 'canceled');
  const unknown = await cancel(fed, 'wpk_nope');
  assert.is(unknown.status, 404);
  assert.is(unknown.body.error.code, 'EDGEFED_ERR_WPK_NOT_FOUND');
  assert.is(fed.hub.counters().refusals.schema ?? 0, 0, '404 and 409 are not refusals of a payload');
});

test.run();
