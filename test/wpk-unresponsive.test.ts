/**
 * Issue 12 §2: a node that lets a trigger time out unaccepted (a device that
 * registered and went silent, with no heartbeat and no will) gets no new
 * mode-one work until it shows life, and the record says so; among free
 * nodes, one seen beating lately is picked before one nobody knows about.
 */
import * as assert from 'uvu/assert';
import { rigSuite } from './helpers/wpk-rig.js';

const test = rigSuite('wpk placement: unresponsive nodes');
const ACCEPT_MS = 10_000;

test('a node that let a trigger time out gets no new work until it shows life', async ({ rig }) => {
  rig.node('dev-1'); // no heartbeat declared: its liveness is unknown
  const first = await rig.create({});
  assert.is(rig.triggers(first.wpk_id)[0]!.assignee, 'dev-1');
  rig.advance(ACCEPT_MS + 250);
  assert.equal(first.executions.map((e) => e.state), ['lost']);
  assert.is(typeof rig.registry.get('dev-1')?.unresponsive_since, 'number', 'the record says so');
  rig.node('edge-1', { heartbeatIntervalMs: 5000 });
  assert.is(rig.triggers(first.wpk_id).at(-1)!.assignee, 'edge-1', 'the WPK moved on to a live node');
  const second = await rig.create({ nodes: ['dev-1'] });
  assert.equal([second.state, rig.triggers(second.wpk_id)], ['pending', []], 'dev-1 gets nothing new');
  rig.online('dev-1'); // a sign of life
  assert.is(rig.registry.get('dev-1')?.unresponsive_since, null);
  assert.is(rig.triggers(second.wpk_id)[0]!.assignee, 'dev-1', 'and it is given work again');
});

test('any update of its work clears it, as a heartbeat does', async ({ rig }) => {
  rig.node('a');
  const w = await rig.create({});
  rig.advance(ACCEPT_MS + 250);
  assert.is(typeof rig.registry.get('a')?.unresponsive_since, 'number');
  rig.send('a', w.wpk_id, 1, 'accepted'); // late, but the node is there
  assert.is(rig.registry.get('a')?.unresponsive_since, null);
});

test('among free nodes, one seen beating lately comes before one of unknown liveness', async ({ rig }) => {
  rig.node('a-silent'); // sorts first, no heartbeat declared
  rig.node('b-beating', { heartbeatIntervalMs: 5000 });
  const w = await rig.create({});
  assert.is(rig.triggers(w.wpk_id)[0]!.assignee, 'b-beating');
});

test.run();
