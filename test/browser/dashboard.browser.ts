/**
 * The fleet dashboard end to end in headless Chromium, against a real
 * federation in this process (embedded broker, hub, HTTP API on an ephemeral
 * loopback port): sign-in with auth on, nodes that join and die, a WPK
 * triggered from the page on a real agent, and 5,000 nodes without freezing.
 */
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import type { Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startAgent } from '../../agent/index.js';
import type { Federation } from '../../server/federation.js';
import { silentLogger } from '../../lib/log.js';
import { topics } from '../../lib/topics.js';
import { closeAll, device, federation, registration } from '../helpers/federation.js';
import { bounded, type Scope } from '../helpers/scope.js';
import { securedFederation } from '../helpers/secured.js';
import { waitFor, withTimeout } from '../helpers/time.js';
import { artifactsDir, domRows, openPage, shownIds } from './chromium.js';

const t = topics();
const test = suite('dashboard in headless Chromium');

/** A device (not our agent) with a Last Will, so that destroying its socket makes it `offline`/`lost`. */
async function mortalDevice(scope: Scope, fed: Federation, id: string, password: string): Promise<MqttClient> {
  const bootId = `boot-${id}`;
  const will = { topic: t.status(id), payload: Buffer.from(JSON.stringify({ state: 'offline', reason: 'lost', boot_id: bootId, ts: Date.now() })), qos: 1 as const, retain: true };
  const client = await device(fed, id, { username: id, password, will });
  scope.defer(() => closeAll(client));
  await client.publishAsync(t.registration(id), JSON.stringify(registration(id, { boot_id: bootId })), { qos: 1, retain: true });
  return client;
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.waitForSelector('#signin:not([hidden])', { timeout: 5000 });
  await page.fill('#signin-token', token);
  await page.click('#signin-submit');
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 5000 });
}

function nodeRow(id: string, status?: string): string {
  return `#nodes-rows .row[data-node-id="${id}"]${status ? `[data-status="${status}"]` : ''}:not([hidden])`;
}

/** Whether an element shows all its text: nothing cut by an ellipsis or a line clamp. */
async function wholeText(page: Page, selector: string): Promise<boolean> {
  return page.$eval(selector, (el) => el.scrollWidth <= el.clientWidth + 1 && el.scrollHeight <= el.clientHeight + 1);
}

const CAPS = ['basic-actions', 'monitoring', 'camera-inference', 'firmware-update'];

test('auth on: sign in, a node joins within 2 s, a node dies and turns offline, a WPK triggered from the page succeeds', bounded(async (scope) => {
  const { fed, token } = await securedFederation(scope);
  const { page, errors } = await openPage(scope, { width: 1400, height: 900 });
  await page.goto(`${fed.api.url}/`);
  await page.waitForSelector('#conn[data-state="unauthorized"]', { timeout: 5000 });
  assert.match(await page.textContent('#signin-message') ?? '', /Bearer/, 'the hub\'s own 401 message');
  await signIn(page, await token({ role: 'operator', scopes: ['wpk:write'] }));
  assert.ok(await page.evaluate(() => sessionStorage.getItem('edgefed.dashboard.token')), 'the token is kept in sessionStorage');
  assert.match(await page.textContent('#hub-info') ?? '', new RegExp(`hub ${fed.hub.bootId}.*auth jwt`));

  const agent = await startAgent({
    nodeId: 'edge-1', capabilities: CAPS, connect: (o) => fed.broker!.connectInMemory(o), username: 'edge-1',
    password: await token({ role: 'agent', subject: 'edge-1', caps: CAPS }), heartbeatIntervalMs: 500, logger: silentLogger,
  });
  scope.defer(() => agent.stop());
  await waitFor(() => fed.hub.node('edge-1')?.status === 'active', { timeoutMs: 5000, label: 'edge-1 registered' });
  const joined = Date.now();
  await page.waitForSelector(nodeRow('edge-1', 'active'), { timeout: 2000 });
  assert.ok(Date.now() - joined <= 2000, 'on the page within 2 s of joining');

  const mortal = await mortalDevice(scope, fed, 'dev-9', await token({ role: 'agent', subject: 'dev-9', caps: ['monitoring'] }));
  await page.waitForSelector(nodeRow('dev-9', 'active'), { timeout: 3000 });
  mortal.stream.destroy(); // no DISCONNECT: the broker publishes the will
  await page.waitForSelector(nodeRow('dev-9', 'offline'), { timeout: 5000 });
  assert.is(await page.textContent(`${nodeRow('dev-9')} .reason`), 'lost');
  await page.waitForFunction(() => document.getElementById('count-offline')?.textContent === '1', undefined, { timeout: 3000 });

  await page.fill('#trigger-capability', 'basic-actions');
  await page.fill('#trigger-action', 'echo');
  await page.fill('#trigger-params', '{"from": "dashboard"}');
  await page.selectOption('#trigger-mode', 'one');
  await page.click('#trigger-submit');
  await page.waitForSelector('#trigger-result[data-kind="ok"]', { timeout: 5000 });
  const wpkId = /wpk_[A-Za-z0-9_-]+/.exec(await page.textContent('#trigger-result') ?? '')?.[0];
  assert.ok(wpkId, 'the page names the WPK it created');
  await page.waitForSelector(`tr[data-wpk-id="${wpkId}"][data-state="succeeded"]`, { timeout: 8000 });
  assert.is(fed.hub.wpks.get(wpkId!)?.state, 'succeeded');
  assert.is(await page.textContent(`tr[data-wpk-id="${wpkId}"] [data-col="assignee"]`), 'edge-1');

  // Readable at 1400 px: a node's four capabilities and a WPK's id, whole.
  assert.ok(await wholeText(page, `${nodeRow('edge-1')} .c-caps`), `capabilities not cut: ${await page.$eval(`${nodeRow('edge-1')} .c-caps`, (el) => [el.scrollWidth, el.clientWidth, el.scrollHeight, el.clientHeight].join(' '))}`);
  assert.is(await page.textContent(`tr[data-wpk-id="${wpkId}"] .w-id`), wpkId);
  assert.ok(await wholeText(page, `tr[data-wpk-id="${wpkId}"] .w-id`), 'the WPK id not cut');
  await page.click(`tr[data-wpk-id="${wpkId}"]`);
  await page.waitForFunction(() => /"from": "dashboard"/.test(document.getElementById('wpk-details-body')?.textContent ?? ''), undefined, { timeout: 3000 });
  await page.click('#wpk-details-close');

  // A rollout shows its progress and pace; a scheduled WPK when it starts.
  await mortalDevice(scope, fed, 'dev-10', await token({ role: 'agent', subject: 'dev-10', caps: ['monitoring'] }));
  await waitFor(() => fed.hub.node('dev-10')?.status === 'active', { timeoutMs: 3000, label: 'dev-10 registered' });
  // dev-9 (offline) comes first by id and keeps its place; dev-10 goes, edge-1 waits for the next slot.
  const rollout = await fed.hub.wpks.create({ capability: 'monitoring', action: 'echo', mode: 'all', include_offline: true, rollout: { max_per_minute: 1 } });
  const cell = (id: string) => `tr[data-wpk-id="${id}"] [data-col="assignee"]`;
  await page.waitForFunction((sel) => /^1 dispatched, 2 queued · 1\/min$/.test(document.querySelector(sel)?.textContent ?? ''), cell(rollout.wpk_id), { timeout: 3000 });
  const later = await fed.hub.wpks.create({ capability: 'basic-actions', action: 'echo', start_at: Date.now() + 600_000 });
  await page.waitForSelector(`tr[data-wpk-id="${later.wpk_id}"][data-state="scheduled"]`, { timeout: 3000 });
  assert.match(await page.textContent(cell(later.wpk_id)) ?? '', /^starts \d\d:\d\d/);
  await page.waitForTimeout(1100); // one more stats tick: the chart shows the dispatch
  await page.screenshot({ path: path.join(await artifactsDir(), 'dashboard.png') });
  assert.equal(errors, []);
}, { timeoutMs: 60_000, label: 'auth scenario' }));

test('auth on: a bad token, sign out, a read-only token and a refused WPK show the hub\'s messages', bounded(async (scope) => {
  const { fed, token } = await securedFederation(scope);
  const { page, errors } = await openPage(scope);
  await page.goto(`${fed.api.url}/`);
  await page.waitForSelector('#signin:not([hidden])', { timeout: 5000 });
  await page.fill('#signin-token', 'not.a.jwt');
  await page.click('#signin-submit');
  await page.waitForFunction(() => /refused/.test(document.getElementById('signin-message')?.textContent ?? ''), undefined, { timeout: 5000 });
  assert.ok(await page.isVisible('#signin'), 'asked again');

  await page.fill('#signin-token', await token({ role: 'operator' }));
  await page.click('#signin-submit');
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 5000 });
  await page.fill('#trigger-capability', 'basic-actions');
  await page.click('#trigger-submit');
  await page.waitForSelector('#trigger-result[data-kind="error"]', { timeout: 5000 });
  assert.match(await page.textContent('#trigger-result') ?? '', /^403: .*wpk:write/);

  await page.fill('#trigger-params', '[1, 2]');
  await page.click('#trigger-submit');
  await page.waitForFunction(() => /JSON object/.test(document.getElementById('trigger-result')?.textContent ?? ''), undefined, { timeout: 3000 });

  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])', { timeout: 5000 });
  assert.is(await page.evaluate(() => sessionStorage.getItem('edgefed.dashboard.token')), null, 'sign out forgets the token');
  await signIn(page, await token({ role: 'operator', scopes: ['wpk:write'] }));
  await page.fill('#trigger-params', '');
  await page.fill('#trigger-capability', 'no/such');
  await page.click('#trigger-submit');
  await page.waitForSelector('#trigger-result[data-kind="error"] li', { timeout: 5000 });
  assert.match(await page.textContent('#trigger-result') ?? '', /^422: request body does not match the schema/);
  assert.equal(errors, []);

  // The page loses the hub: what the hub last said of its broker is no longer news.
  assert.match(await page.textContent('#hub-info') ?? '', /· broker connected ·/);
  await fed.api.close();
  await page.waitForFunction(() => /broker unknown \(the page lost the hub\)/.test(document.getElementById('hub-info')?.textContent ?? ''), undefined, { timeout: 5000 });
  assert.not.equal(await page.getAttribute('#conn', 'data-state'), 'live');
}, { timeoutMs: 45_000, label: 'auth messages' }));

test('5,000 nodes: counts, a bounded DOM, the live window of 2,000, pages through the API, search, and a page that answers while updates flow', bounded(async (scope) => {
  const fed = await federation();
  scope.defer(() => fed.stop());
  const N = 5000;
  const id = (i: number) => `node-${String(i).padStart(4, '0')}`;
  const storm = await device(fed, 'storm');
  scope.defer(() => closeAll(storm));
  for (let i = 0; i < N; i += 1) {
    const reg = registration(id(i), { capabilities: i % 2 ? ['monitoring', 'basic-actions'] : ['camera'], labels: { rack: `r${i % 40}` }, heartbeat_interval_ms: 60_000 });
    storm.publish(t.registration(id(i)), JSON.stringify(reg), { qos: 0, retain: true });
  }
  await waitFor(() => fed.hub.nodes().length >= N, { timeoutMs: 30_000, intervalMs: 50, label: `${N} nodes registered` });

  const { page, errors } = await openPage(scope);
  await page.goto(`${fed.api.url}/`);
  await page.waitForSelector('#count-total[data-value="5000"]', { timeout: 15_000 });
  assert.is(await page.textContent('#count-active'), '5,000');
  assert.not.ok(await page.isVisible('#signin-open'), 'a hub without auth shows no "Sign in"');
  await page.waitForSelector(nodeRow(id(0)), { timeout: 5000 });
  assert.ok(await domRows(page) < 150, `only the rows in view exist (${await domRows(page)})`);

  // Heartbeats all along: the feed sends node upserts every 500 ms while the page is driven.
  let seq = 0;
  const beat = setInterval(() => {
    seq += 1;
    for (let k = 0; k < 250; k += 1) {
      const i = k === 0 ? 0 : Math.floor(Math.random() * N);
      const load = i === 0 ? 0.42 : Math.round(Math.random() * 100) / 100;
      storm.publish(t.heartbeat(id(i)), JSON.stringify({ seq, ts: Date.now(), load }), { qos: 0 });
    }
  }, 250);
  scope.defer(() => clearInterval(beat));
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '0.42', `${nodeRow(id(0))} .meter-text`, { timeout: 5000 });

  for (let i = 0; i < 5; i += 1) {
    // A frame must be painted too, not only the script answer: requestAnimationFrame resolves on the next frame.
    await withTimeout(page.evaluate(() => new Promise<number>((r) => requestAnimationFrame(() => r(1)))), 2000, 'page round trip under updates');
  }

  // The feed keeps the page posted on the first 2,000 nodes by id (FEED_MAX_NODES); the rest is paged through the API.
  assert.match(await page.textContent('#nodes-window') ?? '', /^live: the first 2,000 of 5,000 nodes by id$/);
  await page.evaluate(() => { const v = document.getElementById('nodes-viewport')!; v.scrollTop = v.scrollHeight; });
  await page.waitForSelector(nodeRow(id(1999)), { timeout: 3000 });
  assert.ok(await domRows(page) < 150, 'still bounded at the end');

  await page.fill('#node-search', id(1234));
  await page.waitForFunction(() => document.querySelectorAll('#nodes-rows .row:not([hidden])').length === 1, undefined, { timeout: 3000 });
  assert.equal(await shownIds(page), [id(1234)]);
  assert.match(await page.textContent('#nodes-shown') ?? '', /^1 of 2,000 nodes$/);
  await page.fill('#node-search', 'rack=r7');
  await page.waitForFunction(() => /^50 of/.test(document.getElementById('nodes-shown')?.textContent ?? ''), undefined, { timeout: 3000 });
  assert.ok((await shownIds(page)).every((s) => Number(s.slice(5)) % 40 === 7), 'label search');
  await page.fill('#node-search', '');

  await page.click('#nodes-next');
  await page.waitForSelector(nodeRow(id(2000)), { timeout: 3000 });
  assert.match(await page.textContent('#nodes-window') ?? '', /^500 of 5,000 nodes read from the API/);
  await page.click('#nodes-next');
  await page.waitForSelector(nodeRow(id(2500)), { timeout: 3000 });
  await page.click('#nodes-prev');
  await page.waitForSelector(nodeRow(id(2000)), { timeout: 3000 });
  await page.selectOption('#node-status-filter', 'offline');
  await page.waitForSelector('#nodes-empty:not([hidden])', { timeout: 3000 });
  await page.selectOption('#node-status-filter', '');
  await page.click('#nodes-live');
  await page.waitForSelector(nodeRow(id(0)), { timeout: 3000 });
  assert.equal(errors, []);
}, { timeoutMs: 90_000, label: '5,000 nodes' }));

test.run();
