/** The presence rules of the contract on the in-memory registry model (no broker). */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry, registrationOf } from '../hub/registry.js';
import type { Registration } from '../lib/wire.js';

const test = suite('registry rules');
const reg = (id: string, extra: Partial<Registration> = {}): Registration => ({ node_id: id, capabilities: ['m'], boot_id: 'b1', ts: 100, ...extra });
const live = (now: number) => ({ now, live: true });
const replay = (now: number) => ({ now, live: false });

test('a live registration is a birth; a replayed one is recorded but stale', () => {
  const r = new Registry();
  assert.is(r.applyRegistration(reg('a'), live(1)).record.status, 'active');
  assert.is(r.applyRegistration(reg('b'), replay(1)).record.status, 'stale');
  assert.is(r.get('b')?.last_seen, null);
});

test('same boot_id and ts is a duplicate; a new ts re-announces; a new boot_id is a rebirth', () => {
  const r = new Registry();
  const first = r.applyRegistration(reg('a'), live(1)).record;
  assert.is(r.applyRegistration(reg('a'), live(2)).outcome, 'duplicate');
  assert.is(r.applyRegistration(reg('a', { ts: 101 }), live(3)).outcome, 'updated');
  assert.is(r.applyRegistration(reg('a', { ts: 99 }), live(3)).outcome, 'older', 'a delayed earlier announcement');
  assert.is(r.get('a')?.registration_ts, 101);
  const rebirth = r.applyRegistration(reg('a', { boot_id: 'b2', ts: 200 }), live(4));
  assert.is(rebirth.outcome, 'rebirth');
  assert.is(rebirth.record.id, first.id, 'registration id is stable');
  assert.is(rebirth.record.registered_at, 1);
});

test('a replayed online status proves no liveness; a live one does', () => {
  const r = new Registry();
  r.restore([{ ...r.applyRegistration(reg('a'), live(1)).record }]);
  assert.is(r.get('a')?.status, 'stale', 'restored nodes are stale');
  assert.is(r.applyStatus('a', { state: 'online', boot_id: 'b1', ts: 5 }, replay(2)), 'unchanged');
  assert.is(r.get('a')?.status, 'stale');
  assert.is(r.applyStatus('a', { state: 'online', boot_id: 'b1', ts: 5 }, live(3)), 'applied');
  assert.is(r.get('a')?.status, 'active');
});

test('a will of another boot is ignored; of the current boot marks offline', () => {
  const r = new Registry();
  r.applyRegistration(reg('a'), live(1));
  assert.is(r.applyStatus('a', { state: 'offline', reason: 'lost', boot_id: 'b0', ts: 5 }, live(2)), 'older_session');
  assert.is(r.get('a')?.status, 'active');
  assert.is(r.applyStatus('a', { state: 'offline', reason: 'lost', boot_id: 'b1', ts: 5 }, live(3)), 'applied');
  assert.equal([r.get('a')?.status, r.get('a')?.status_reason], ['offline', 'lost']);
});

test('stale only for nodes that declared an interval, after 3 missed beats; a beat revives', () => {
  const r = new Registry();
  r.applyRegistration(reg('beats', { heartbeat_interval_ms: 1000 }), live(0));
  r.applyRegistration(reg('will-only'), live(0));
  assert.equal(r.sweep(3000).map((n) => n.node_id), [], 'exactly 3 intervals is not yet stale');
  assert.equal(r.sweep(3001).map((n) => n.node_id), ['beats']);
  assert.is(r.get('will-only')?.status, 'active');
  assert.is(r.applyHeartbeat('beats', { load: 0.3 }, 3500), 'durable');
  assert.is(r.get('beats')?.status, 'active');
  assert.is(r.applyHeartbeat('beats', {}, 3600), 'liveness');
  assert.is(r.applyHeartbeat('nobody', {}, 3600), 'unknown_node');
});

test('a status held before a replayed registration is applied to it, not to a live one', () => {
  const r = new Registry();
  const will = { state: 'offline' as const, reason: 'lost' as const, boot_id: 'b1', ts: 5 };
  assert.is(r.applyStatus('x', will, replay(1)), 'unknown_node');
  r.applyRegistration(reg('x'), replay(2));
  assert.is(r.get('x')?.status, 'offline');
  assert.is(r.applyStatus('y', will, live(1)), 'unknown_node');
  r.applyRegistration(reg('y'), live(2));
  assert.is(r.get('y')?.status, 'active');
});

test('deregistration keeps the record, marked; registrationOf rebuilds the payload', () => {
  const r = new Registry();
  const full = reg('a', { endpoint: 'http://a:1', labels: { site: 'x' }, heartbeat_interval_ms: 500, max_concurrency: 2 });
  r.applyRegistration(full, live(1));
  assert.equal(registrationOf(r.get('a')!), full);
  assert.is(r.deregister('a', 2)?.status, 'deregistered');
  assert.is(r.deregister('a', 3), undefined, 'once');
  assert.equal(r.countByStatus(), { active: 0, stale: 0, offline: 0, deregistered: 1 });
});

test('deregistered records are forgotten after the retention time, others never', () => {
  const r = new Registry();
  r.applyRegistration(reg('gone'), live(0));
  r.applyRegistration(reg('stays'), live(0));
  r.deregister('gone', 1000);
  assert.equal(r.pruneDeregistered(1500, 1000), []);
  assert.equal(r.pruneDeregistered(2001, 1000), ['gone']);
  assert.equal(r.pruneDeregistered(10_000_000, 1000), []);
  assert.is(r.size, 1);
});

test.run();
