import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Identity } from '../auth/types.js';
import { createAcl } from '../broker/acl.js';
import { topics } from '../lib/topics.js';

/* The ACL's rules as pure functions: no broker, every role and edge. */

const acl = createAcl();
const t = topics();
const identity = (role: Identity['role'], subject: string, caps: string[] = []): Identity =>
  ({ role, subject, caps, scopes: [], expiresAt: Math.floor(Date.now() / 1000) + 3600, acceptedUntil: Math.floor(Date.now() / 1000) + 3630, kid: 'k' });
const agent = identity('agent', 'edge-001', ['monitoring', 'basic-actions']);
const operator = identity('operator', 'alice');
const hub = identity('hub', 'hub');
const reg = (caps: string[]) => Buffer.from(JSON.stringify({ node_id: 'edge-001', capabilities: caps }));
const empty = Buffer.alloc(0);
const reasonOf = (verdict: { ok: boolean; reason?: string }) => (verdict.ok ? 'ok' : verdict.reason);

test('agent publishes below its own node only, never on its commands', () => {
  assert.is(reasonOf(acl.mayPublish(agent, t.heartbeat('edge-001'), empty)), 'ok');
  assert.is(reasonOf(acl.mayPublish(agent, t.status('edge-001'), empty)), 'ok');
  assert.is(reasonOf(acl.mayPublish(agent, t.execution('edge-001', 'wpk_1'), empty)), 'ok');
  assert.is(reasonOf(acl.mayPublish(agent, t.heartbeat('edge-0011'), empty)), 'not_own_node', 'a prefix of another id is not its own');
  assert.is(reasonOf(acl.mayPublish(agent, 'edgefed/v1/nodes/edge-001', empty)), 'not_own_node');
  assert.is(reasonOf(acl.mayPublish(agent, t.commands('edge-001'), empty)), 'own_commands');
  assert.is(reasonOf(acl.mayPublish(agent, `${t.commands('edge-001')}/deeper`, empty)), 'own_commands');
  assert.is(reasonOf(acl.mayPublish(agent, t.reported('edge-001'), empty)), 'ok');
  assert.is(reasonOf(acl.mayPublish(agent, t.desired('edge-001'), empty)), 'own_desired', 'only the hub sets desired state');
  assert.is(reasonOf(acl.mayPublish(agent, t.reported('edge-002'), empty)), 'not_own_node');
  assert.is(reasonOf(acl.mayPublish(hub, t.desired('edge-001'), empty)), 'ok');
  assert.is(reasonOf(acl.mayPublish(agent, t.trigger('monitoring'), empty)), 'not_own_node');
  assert.is(reasonOf(acl.mayPublish(agent, t.hubStatus(), empty)), 'not_own_node');
  assert.is(reasonOf(acl.mayPublish(agent, t.hubError('edge-001'), empty)), 'not_own_node');
});

test('an agent registration announces a subset of its token caps; empty deregisters', () => {
  assert.is(reasonOf(acl.mayPublish(agent, t.registration('edge-001'), reg(['monitoring']))), 'ok');
  assert.is(reasonOf(acl.mayPublish(agent, t.registration('edge-001'), reg(['monitoring', 'basic-actions']))), 'ok');
  assert.is(reasonOf(acl.mayPublish(agent, t.registration('edge-001'), empty)), 'ok');
  assert.is(reasonOf(acl.mayPublish(agent, t.registration('edge-001'), reg(['monitoring', 'gpu']))), 'caps_exceeded');
  for (const bad of ['nope', '[]', 'null', '{"capabilities":"monitoring"}', '{"capabilities":[1]}', '{}']) {
    assert.is(reasonOf(acl.mayPublish(agent, t.registration('edge-001'), Buffer.from(bad))), 'registration_unreadable', bad);
  }
});

test('agent subscribes to its exact trigger topics, its own node, the hub status and its refusals', () => {
  const granted = [
    t.trigger('monitoring'), t.trigger('monitoring', 'edge-001'), t.trigger('basic-actions', 'edge-001'),
    t.commands('edge-001'), 'edgefed/v1/nodes/edge-001/#', 'edgefed/v1/nodes/edge-001/+', t.hubStatus(), t.hubError('edge-001'),
    t.desired('edge-001'),
  ];
  for (const filter of granted) assert.is(reasonOf(acl.maySubscribe(agent, filter)), 'ok', filter);
  const refused = [
    '#', 'edgefed/#', 'edgefed/v1/wpk/monitoring/#', 'edgefed/v1/wpk/monitoring/trigger/+', 'edgefed/v1/wpk/+/trigger',
    t.trigger('monitoring', 'edge-002'), t.trigger('gpu'), t.commands('edge-002'), 'edgefed/v1/nodes/+/commands',
    'edgefed/v1/nodes/edge-001', t.hubError('edge-002'), 'edgefed/v1/hub/#', '$SYS/#',
    t.desired('edge-002'), 'edgefed/v1/nodes/+/desired', t.reported('edge-002'),
  ];
  for (const filter of refused) assert.is(reasonOf(acl.maySubscribe(agent, filter)), 'not_granted', filter);
});

test('operator reads the namespace and publishes nothing; hub does everything under edgefed/', () => {
  assert.is(reasonOf(acl.maySubscribe(operator, 'edgefed/#')), 'ok');
  assert.is(reasonOf(acl.maySubscribe(operator, t.allNodes('heartbeat'))), 'ok');
  assert.is(reasonOf(acl.maySubscribe(operator, '#')), 'outside_namespace');
  assert.is(reasonOf(acl.maySubscribe(operator, '+/v1/hub/status')), 'outside_namespace');
  assert.is(reasonOf(acl.mayPublish(operator, t.hubStatus(), empty)), 'read_only_role');
  assert.is(reasonOf(acl.mayPublish(operator, t.registration('alice'), reg([]))), 'read_only_role');
  for (const topic of [t.trigger('monitoring'), t.trigger('monitoring', 'edge-001'), t.commands('edge-001'), t.hubStatus(), t.hubError('edge-001')]) {
    assert.is(reasonOf(acl.mayPublish(hub, topic, empty)), 'ok', topic);
  }
  assert.is(reasonOf(acl.mayPublish(hub, 'elsewhere/x', empty)), 'outside_namespace');
  assert.is(reasonOf(acl.maySubscribe(hub, 'edgefed/#')), 'ok');
  assert.is(reasonOf(acl.maySubscribe(hub, '#')), 'outside_namespace');
});

test('client ids and takeovers', () => {
  assert.ok(acl.mayUseClientId(agent, 'edge-001'));
  assert.not.ok(acl.mayUseClientId(agent, 'edge-002'));
  assert.ok(acl.mayUseClientId(operator, 'whatever-1'));
  assert.ok(acl.mayTakeOver(agent, agent, 'edge-001'), 'the node reconnecting');
  assert.ok(acl.mayTakeOver(agent, operator, 'edge-001'), 'a token for that id');
  assert.not.ok(acl.mayTakeOver(operator, agent, 'edge-001'));
  assert.not.ok(acl.mayTakeOver(hub, agent, 'edge-001'));
  assert.not.ok(acl.mayTakeOver(identity('operator', 'bob'), operator, 'tool-1'));
  assert.ok(acl.mayTakeOver(identity('operator', 'alice'), operator, 'tool-1'));
});

test('identities that could escape their topics are flawed', () => {
  assert.is(acl.identityFlaw(agent), undefined);
  assert.is(acl.identityFlaw(operator), undefined);
  assert.ok(acl.identityFlaw(identity('agent', '+')));
  assert.ok(acl.identityFlaw(identity('agent', 'a/b')));
  assert.ok(acl.identityFlaw(identity('agent', 'edge-001', ['#'])));
});

test('a Will without its owner: only the owner\'s own status', () => {
  assert.is(reasonOf(acl.mayPublishOrphanWill('edge-001', t.status('edge-001'))), 'ok');
  assert.is(reasonOf(acl.mayPublishOrphanWill('edge-001', t.status('edge-002'))), 'no_identity');
  assert.is(reasonOf(acl.mayPublishOrphanWill('edge-001', t.registration('edge-001'))), 'no_identity');
  assert.is(reasonOf(acl.mayPublishOrphanWill(undefined, t.status('edge-001'))), 'no_identity');
});

test('another topic root moves every rule with it', () => {
  const custom = createAcl('acme/edge');
  const ct = topics('acme/edge');
  assert.is(reasonOf(custom.mayPublish(agent, ct.heartbeat('edge-001'), empty)), 'ok');
  assert.is(reasonOf(custom.mayPublish(agent, t.heartbeat('edge-001'), empty)), 'not_own_node');
  assert.is(reasonOf(custom.maySubscribe(agent, ct.trigger('monitoring', 'edge-001'))), 'ok');
  assert.is(reasonOf(custom.maySubscribe(operator, 'acme/#')), 'ok');
  assert.is(reasonOf(custom.maySubscribe(operator, 'edgefed/#')), 'outside_namespace');
});

test.run();
