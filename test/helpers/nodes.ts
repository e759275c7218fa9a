/**
 * A scripted node that speaks the wire contract with a plain MQTT client (not
 * our agent): it registers, records the triggers and commands addressed to it,
 * and answers with whatever execution updates a test tells it to. This is how
 * the hub's work-package rules are tested on their own.
 */
import type { MqttClient } from 'mqtt';
import type { Federation } from '../../server/federation.js';
import { topics } from '../../lib/topics.js';
import type { ExecutionState, WpkTrigger } from '../../lib/wire.js';
import { closeAll, device, registration } from './federation.js';
import type { Scope } from './scope.js';
import { waitFor } from './time.js';

const t = topics();

export interface ScriptedNode {
  readonly id: string;
  readonly client: MqttClient;
  /** Triggers this node would run (addressed to it or to everyone), in arrival order. */
  readonly triggers: WpkTrigger[];
  /** Every trigger message delivered to this node, addressed to it or not. */
  readonly delivered: { count: number };
  readonly commands: Array<Record<string, unknown>>;
  send(wpkId: string, attempt: number, state: ExecutionState, extra?: Record<string, unknown>): Promise<void>;
  /** accepted, running, then `final` (default succeeded with `{ok: true}`). */
  complete(trigger: WpkTrigger, final?: ExecutionState, extra?: Record<string, unknown>): Promise<void>;
  /** Waits for the trigger of this WPK (and attempt, when given) to reach this node. */
  triggerOf(wpkId: string, attempt?: number, timeoutMs?: number): Promise<WpkTrigger>;
  /** Dies abruptly: the broker publishes its will. */
  kill(): void;
}

export interface NodeSpec { capabilities?: string[]; maxConcurrency?: number; labels?: Record<string, string>; bootId?: string }

export async function scriptedNode(scope: Scope, fed: Federation, id: string, spec: NodeSpec = {}): Promise<ScriptedNode> {
  const bootId = spec.bootId ?? `boot-${id}`;
  const caps = spec.capabilities ?? ['monitoring'];
  const client = await device(fed, id, {
    will: { topic: t.status(id), payload: Buffer.from(JSON.stringify({ state: 'offline', reason: 'lost', boot_id: bootId, ts: Date.now() })), qos: 1, retain: true },
  });
  scope.defer(() => closeAll(client));
  const triggers: WpkTrigger[] = [];
  const commands: Array<Record<string, unknown>> = [];
  const delivered = { count: 0 };
  client.on('message', (topic, payload) => {
    const body = JSON.parse(payload.toString()) as Record<string, unknown>;
    if (topic === t.commands(id)) return void commands.push(body);
    delivered.count += 1;
    const trig = body as unknown as WpkTrigger;
    if (trig.assignee !== undefined && trig.assignee !== id) return;
    if (trig.targets !== undefined && !trig.targets.includes(id)) return;
    triggers.push(trig);
  });
  await client.subscribeAsync([t.commands(id), ...caps.flatMap((c) => [t.trigger(c), t.trigger(c, id)])], { qos: 1 });
  const extra: Record<string, unknown> = { capabilities: caps, boot_id: bootId };
  if (spec.maxConcurrency !== undefined) extra.max_concurrency = spec.maxConcurrency;
  if (spec.labels !== undefined) extra.labels = spec.labels;
  await client.publishAsync(t.registration(id), JSON.stringify(registration(id, extra)), { qos: 1, retain: true });
  await waitFor(() => fed.hub.node(id)?.status === 'active' && fed.hub.node(id)?.boot_id === bootId, { label: `${id} registered` });

  const send = async (wpkId: string, attempt: number, state: ExecutionState, more: Record<string, unknown> = {}) => {
    const update = { wpk_id: wpkId, node_id: id, attempt, state, ts: Date.now(), ...more };
    await client.publishAsync(t.execution(id, wpkId), JSON.stringify(update), { qos: 1 });
  };
  return {
    id,
    client,
    triggers,
    delivered,
    commands,
    send,
    async complete(trigger, final = 'succeeded', more = final === 'succeeded' ? { result: { ok: true } } : {}) {
      await send(trigger.wpk_id, trigger.attempt, 'accepted');
      await send(trigger.wpk_id, trigger.attempt, 'running');
      await send(trigger.wpk_id, trigger.attempt, final, more);
    },
    triggerOf(wpkId, attempt, timeoutMs = 2000) {
      const match = (x: WpkTrigger) => x.wpk_id === wpkId && (attempt === undefined || x.attempt === attempt);
      return waitFor(() => triggers.find(match), { timeoutMs, label: `trigger of ${wpkId} for ${id}` });
    },
    kill: () => client.stream.destroy(),
  };
}
