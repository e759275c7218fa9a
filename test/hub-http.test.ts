import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Federation } from '../server/federation.js';
import { api, closeAll, collector, device, federation, post, registration } from './helpers/federation.js';
import { waitFor, withTimeout } from './helpers/time.js';

const test = suite<{ fed?: Federation }>('hub: HTTP API');
test.after.each(async (ctx) => { await ctx.fed?.stop(); ctx.fed = undefined; });
const T = (label: string, fn: (ctx: { fed?: Federation }) => Promise<void>) => test(label, (ctx) => withTimeout(fn(ctx), 8000, label));

interface Node { id: string; node_id: string; status: string; capabilities: string[]; endpoint: string | null; registered_at: number; last_seen: number | null; labels: Record<string, string>; boot_id: string }
interface ErrorBody { error: { code: string; message: string; details?: string[] } }

T('POST /federation/register: active at once, bridged to the retained MQTT registration', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const body = { node_id: 'edge-node-001', endpoint: 'http://edge-node-001:8040', capabilities: ['monitoring', 'basic-actions'] };
  const res = await api<{ status: string; registration_id: string }>(fed, '/federation/register', post(body));
  assert.is(res.status, 201);
  assert.is(res.body.status, 'registered');
  assert.ok(res.body.registration_id.length > 8);
  const node = await api<Node>(fed, '/federation/nodes/edge-node-001');
  assert.is(node.status, 200);
  assert.is(node.body.status, 'active');
  assert.is(node.body.id, res.body.registration_id);
  assert.equal(node.body.capabilities, body.capabilities);
  assert.is(node.body.endpoint, body.endpoint);
  assert.type(node.body.registered_at, 'number');
  assert.not.ok('registration' in node.body, 'raw payload not exposed');
  const op = await device(fed, 'operator');
  const seen = await collector(op, fed.hub.topics.registration('edge-node-001'));
  await waitFor(() => seen.length === 1, { label: 'retained bridged registration' });
  assert.ok(seen[0]!.retain);
  assert.is(JSON.parse(seen[0]!.payload).boot_id, node.body.boot_id);
  const again = await api<{ registration_id: string }>(fed, '/federation/register', post(body));
  assert.is(again.status, 200, 'a re-registration is an update');
  assert.is(again.body.registration_id, res.body.registration_id, 'stable registration id');
  await closeAll(op);
});

T('GET /federation/nodes filters by capability, status and label', async (ctx) => {
  const fed = (ctx.fed = await federation());
  await api(fed, '/federation/register', post({ node_id: 'a', capabilities: ['monitoring'], labels: { site: 'berlin' } }));
  await api(fed, '/federation/register', post({ node_id: 'b', capabilities: ['gpu'], labels: { site: 'paris' } }));
  const dev = await device(fed, 'c');
  await dev.publishAsync(fed.hub.topics.registration('c'), JSON.stringify(registration('c', { capabilities: ['monitoring', 'gpu'] })), { qos: 1, retain: true });
  await waitFor(() => fed.hub.nodes().length === 3);
  const ids = async (q: string) => (await api<{ count: number; nodes: Node[] }>(fed, `/federation/nodes${q}`)).body.nodes.map((n) => n.node_id);
  assert.equal(await ids(''), ['a', 'b', 'c']);
  assert.equal(await ids('?capability=gpu'), ['b', 'c']);
  assert.equal(await ids('?label=site=berlin'), ['a']);
  assert.equal(await ids('?status=active&capability=monitoring'), ['a', 'c']);
  assert.equal(await ids('?status=offline'), []);
  const bad = await api<ErrorBody>(fed, '/federation/nodes?status=sleepy');
  assert.is(bad.status, 400);
  assert.match(bad.body.error.message, /active, stale, offline, deregistered/);
  await closeAll(dev);
});

T('bad bodies: 400 when not JSON, 422 with reasons on schema errors; nothing changes', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const notJson = await api<ErrorBody>(fed, '/federation/register', post('{"node_id":'));
  assert.is(notJson.status, 400);
  assert.is(notJson.body.error.code, 'EDGEFED_ERR_BAD_JSON');
  const schema = await api<ErrorBody>(fed, '/federation/register', post({ node_id: 'bad/id', capabilities: [] }));
  assert.is(schema.status, 422);
  assert.is(schema.body.error.code, 'EDGEFED_ERR_SCHEMA');
  assert.ok((schema.body.error.details ?? []).some((d) => d.startsWith('node_id')), 'names the field');
  assert.ok((schema.body.error.details ?? []).some((d) => d.startsWith('capabilities')));
  const array = await api<ErrorBody>(fed, '/federation/register', post([{ node_id: 'x', capabilities: ['m'] }]));
  assert.is(array.status, 422);
  const tooMany = await api<ErrorBody>(fed, '/federation/register', post({ node_id: 'x', capabilities: Array.from({ length: 33 }, (_, i) => `c${i}`) }));
  assert.is(tooMany.status, 422);
  assert.is(fed.hub.nodes().length, 0);
  assert.is(fed.hub.counters().refusals.not_json, 1);
  assert.is(fed.hub.counters().refusals.schema, 3);
  const health = await api<{ status: string; refusals_total: number }>(fed, '/health');
  assert.is(health.body.status, 'ok');
  assert.is(health.body.refusals_total, 4);
});

T('POST /federation/nodes/:id/heartbeat keeps an HTTP-only device alive', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const unknown = await api<ErrorBody>(fed, '/federation/nodes/nobody/heartbeat', post({}));
  assert.is(unknown.status, 404);
  await api(fed, '/federation/register', post({ node_id: 'http-dev', capabilities: ['monitoring'], heartbeat_interval_ms: 100 }));
  await waitFor(() => fed.hub.node('http-dev')?.status === 'stale', { label: 'stale without beats' });
  const hb = await api<{ status: string; last_seen: number }>(fed, '/federation/nodes/http-dev/heartbeat', post({ load: 0.25 }));
  assert.is(hb.status, 200);
  assert.is(hb.body.status, 'active');
  assert.is(fed.hub.node('http-dev')?.load, 0.25);
  const badHb = await api<ErrorBody>(fed, '/federation/nodes/http-dev/heartbeat', post({ load: -1 }));
  assert.is(badHb.status, 422);
});

T('unknown routes and methods answer JSON errors', async (ctx) => {
  const fed = (ctx.fed = await federation());
  const missing = await api<ErrorBody>(fed, '/nope');
  assert.is(missing.status, 404);
  const method = await api<ErrorBody>(fed, '/federation/nodes', { method: 'DELETE' });
  assert.is(method.status, 405);
  const allow = await fetch(`${fed.api.url}/federation/nodes`, { method: 'DELETE' });
  assert.is(allow.headers.get('allow'), 'GET, HEAD');
  await allow.body?.cancel();
  const head = await fetch(`${fed.api.url}/health`, { method: 'HEAD' });
  assert.is(head.status, 200);
  assert.match(head.headers.get('content-type') ?? '', /json/);
  assert.is(await head.text(), '');
  const node = await api<ErrorBody>(fed, '/federation/nodes/not-there');
  assert.is(node.status, 404);
  assert.is(node.body.error.code, 'EDGEFED_ERR_NODE_NOT_FOUND');
  const badPath = await api<ErrorBody>(fed, '/federation/nodes/%zz');
  assert.is(badPath.status, 400);
  assert.is(badPath.body.error.code, 'EDGEFED_ERR_BAD_PATH');
});

T('a taken MQTT port is an actionable error, and nothing is left running', async (ctx) => {
  const fed = (ctx.fed = await federation({ mqttListen: true, mqttPort: 0 }));
  const port = Number(new URL(fed.mqttUrl!).port);
  try {
    const second = await federation({ mqttListen: true, mqttPort: port });
    await second.stop();
    assert.unreachable('two brokers on one port');
  } catch (err) {
    assert.match((err as Error).message, /EDGEFED_ERR_MQTT_LISTEN: .*--mqtt-port/);
  }
});

T('a non-loopback bind is refused without --insecure, also with an external broker', async () => {
  for (const brokerUrl of [undefined, 'mqtt://127.0.0.1:1']) {
    try {
      const fed = await federation({ bind: '0.0.0.0', ...(brokerUrl ? { brokerUrl } : {}) });
      await fed.stop();
      assert.unreachable('started on 0.0.0.0');
    } catch (err) {
      assert.match((err as Error).message, /EDGEFED_ERR_INSECURE_BIND/);
    }
  }
});

test.run();
