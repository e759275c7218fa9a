/**
 * Child process of the work-package benchmarks: N real agents (`startAgent`,
 * built-in actions) connected to the parent's broker over loopback TCP, so
 * the hub and broker keep the parent's core and the agents use the other.
 * Started by wpk-harness.ts with its configuration as argv[2] (JSON) and
 * driven over the IPC channel:
 *
 *   parent -> child  { cmd: 'cut', ids, how: 'silent' | 'close' }
 *                    { cmd: 'stats' } | { cmd: 'trace' } | { cmd: 'stop' }
 *   child -> parent  { type: 'ready' } | { type: 'cut', at } | { type: 'stats', ... } | { type: 'trace', ... } | { type: 'stopped' }
 *
 * Every agent gets its TCP socket through `AgentOptions.connect`, wrapped in a
 * link the parent can cut. `silent` models a network cut: the socket stays
 * open but nothing is read or written any more (no FIN, no RST), so the broker
 * only notices through its keepalive timer; `close` destroys the socket (what
 * the kernel does when a process is SIGKILLed: the broker sees it at once).
 * Either way the agent can never reach the broker again. Times sent to the
 * parent are `performance.timeOrigin + performance.now()` (same clock there).
 *
 * The sockets are set up like the product's (agent/transport.ts since
 * 967cc92): TCP_NODELAY on, unless the parent asks for the `--nagle` ablation.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import { MqttClient, type IClientOptions } from 'mqtt';
import { startAgent, type Agent } from '../agent/index.js';
import { jsonLogger } from '../lib/log.js';
import { topics } from '../lib/topics.js';
import { PING_TOPIC, PONG_TOPIC, type FleetCommand, type FleetConfig, type FleetReport } from './wpk-protocol.js';

const epochNow = (): number => performance.timeOrigin + performance.now();
/** The hub of the benchmarks uses the default topic root. */
const triggerTopics = topics();

/** One TCP connection of one agent, which the parent can cut. */
class CuttableLink extends Duplex {
  #silent = false;

  /** `sock` undefined: a link that never connects (the node is cut off from the broker). */
  constructor(private readonly sock: net.Socket | undefined) {
    super();
    if (!sock) return;
    sock.on('data', (chunk: Buffer) => { if (!this.#silent && !this.push(chunk)) sock.pause(); });
    sock.on('end', () => { if (!this.#silent) this.push(null); });
    sock.on('error', (err) => { if (!this.#silent) this.destroy(err); });
    sock.on('close', () => { if (!this.#silent) this.destroy(); });
  }

  override _read(): void {
    if (!this.#silent) this.sock?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#silent || !this.sock) return cb();
    this.sock.write(chunk, (err) => cb(err ?? null));
  }

  /**
   * mqtt.js (mqtt-packet's writeToStream) corks the stream and writes each
   * packet in 4-6 small chunks. Without `_writev` a Duplex hands them to
   * `_write` one at a time, each after the previous write's callback: with
   * TCP_NODELAY every chunk became its own segment and syscall, which a real
   * agent's net.Socket (it has `_writev`) never does. So pass the batch on
   * corked: one writev, as on the agent's own socket.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    if (this.#silent || !this.sock) return cb();
    const sock = this.sock;
    sock.cork();
    for (let i = 0; i < chunks.length - 1; i += 1) sock.write(chunks[i]!.chunk);
    sock.write(chunks[chunks.length - 1]!.chunk, (err) => cb(err ?? null));
    sock.uncork();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.#silent) this.sock?.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#silent) this.sock?.destroy();
    cb(err);
  }

  /** Network cut: the socket stays open and silent; the agent's later writes go nowhere. */
  silence(): void {
    this.#silent = true;
    this.sock?.pause();
    this.sock?.removeAllListeners('data');
  }

  /** Abrupt close, as when the process dies: FIN now. */
  close(): void {
    this.sock?.destroy();
  }

  /** End of the benchmark: whatever was kept open silently is closed. */
  release(): void {
    this.sock?.destroy();
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as FleetConfig;
  const send = (m: FleetReport) => process.send?.(m);
  const links = new Map<string, CuttableLink>();
  const allLinks: CuttableLink[] = [];
  const cutOff = new Set<string>();
  let triggerDeliveries = 0;
  let broadcastDeliveries = 0;
  let updatePublishes = 0;
  // Executions that ran to `succeeded`, counted where they ran: a WPK id seen twice ran twice.
  const succeededIds = new Set<string>();
  let succeededPublishes = 0;
  let duplicateSucceeded = 0;
  const log = jsonLogger('error');
  // cfg.trace: where each round trip spends its time on this side (see FleetConfig.trace).
  const traceWpk = new Map<string, [number, number, number]>();
  const traceFloor = new Map<number, [number, number]>();
  const traceKey = (text: string) => `${/"wpk_id":"([^"]+)"/.exec(text)?.[1]}#${/"attempt":(\d+)/.exec(text)?.[1]}`;

  const connect = (nodeId: string) => (opts: IClientOptions): MqttClient => {
    const client = new MqttClient(() => {
      // noDelay as the agent's default transport (agent/transport.ts) sets it; false only for `--nagle`.
      const link = new CuttableLink(cutOff.has(nodeId) ? undefined : net.connect({ host: cfg.host, port: cfg.port, noDelay: cfg.noDelay }));
      if (!cutOff.has(nodeId)) links.set(nodeId, link);
      allLinks.push(link);
      return link;
    }, opts);
    // Broadcast `wpk/{cap}/trigger` and addressed `wpk/{cap}/trigger/{node}` alike.
    client.on('message', (topic) => {
      const t = triggerTopics.parse(topic);
      if (t?.kind !== 'trigger') return;
      triggerDeliveries += 1;
      if (t.nodeId === undefined) broadcastDeliveries += 1;
    });
    if (cfg.trace) {
      client.on('packetreceive', (packet) => {
        if (packet.cmd !== 'publish' || triggerTopics.parse(packet.topic)?.kind !== 'trigger') return;
        const key = traceKey(String(packet.payload));
        if (!traceWpk.has(key)) traceWpk.set(key, [epochNow(), NaN, NaN]);
      });
    }
    client.on('packetsend', (packet) => {
      if (packet.cmd !== 'publish' || !packet.topic.includes('/executions/')) return;
      updatePublishes += 1;
      if (packet.dup) return; // a QoS 1 resend of an update already counted
      const text = String(packet.payload);
      if (cfg.trace) {
        const t = traceWpk.get(traceKey(text));
        if (t && text.includes('"state":"accepted"') && Number.isNaN(t[1])) t[1] = epochNow();
        if (t && text.includes('"state":"succeeded"') && Number.isNaN(t[2])) t[2] = epochNow();
      }
      if (!text.includes('"state":"succeeded"')) return;
      succeededPublishes += 1;
      const id = /"wpk_id":"([^"]+)"/.exec(text)?.[1] ?? '';
      if (succeededIds.has(id)) duplicateSucceeded += 1;
      else succeededIds.add(id);
    });
    return client;
  };

  const agents: Agent[] = [];
  let connected = 0;
  const batch = Math.max(1, Math.ceil(cfg.rate / 20));
  for (let i = 0; i < cfg.nodes; i += batch) {
    const started = Date.now();
    const group = await Promise.all(Array.from({ length: Math.min(batch, cfg.nodes - i) }, (_, k) => {
      const nodeId = `${cfg.prefix}-${i + k}`;
      return startAgent({
        nodeId, capabilities: cfg.ownCapability ? [cfg.capability, nodeId] : [cfg.capability], connect: connect(nodeId), keepaliveS: cfg.keepaliveS,
        heartbeatIntervalMs: cfg.heartbeatMs, concurrency: cfg.concurrency, logger: log, stopTimeoutMs: 2000,
      });
    }));
    for (const a of group) {
      a.on('connect', () => { connected += 1; });
      a.on('disconnect', () => { connected -= 1; });
      agents.push(a);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 50 - (Date.now() - started))));
  }

  let responder: MqttClient | undefined;
  if (cfg.responder) {
    // The agents' client type: mqtt.js's client class over a plain net.connect socket.
    const r = new MqttClient(() => net.connect({ host: cfg.host, port: cfg.port, noDelay: cfg.noDelay }), { clientId: 'bench-echo', keepalive: 60, reconnectPeriod: 0, protocolVersion: 4 });
    responder = r;
    await new Promise<void>((resolve, reject) => { r.once('connect', () => resolve()); r.once('error', reject); });
    const seqOf = (payload: Buffer) => Number(payload.subarray(0, payload.indexOf(0x7c)).toString());
    if (cfg.trace) {
      r.on('packetreceive', (p) => { if (p.cmd === 'publish' && p.topic === PING_TOPIC) traceFloor.set(seqOf(p.payload as Buffer), [epochNow(), NaN]); });
      r.on('packetsend', (p) => {
        if (p.cmd !== 'publish' || p.topic !== PONG_TOPIC) return;
        const t = traceFloor.get(seqOf(Buffer.from(p.payload)));
        if (t && Number.isNaN(t[1])) t[1] = epochNow();
      });
    }
    r.on('message', (_topic, payload) => r.publish(PONG_TOPIC, payload, { qos: 1 }));
    await r.subscribeAsync(PING_TOPIC, { qos: 1 });
  }

  const deadline = Date.now() + 120_000;
  while (connected < cfg.nodes) {
    if (Date.now() > deadline) throw new Error(`fleet: only ${connected}/${cfg.nodes} agents connected after 120 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  send({ type: 'ready', connected });

  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.all(agents.map((a) => a.stop()));
    await responder?.endAsync(true);
    for (const link of allLinks) link.release();
    send({ type: 'stopped' });
    process.disconnect?.();
  };

  process.on('message', (m: FleetCommand) => {
    if (m.cmd === 'cut') {
      for (const id of m.ids) cutOff.add(id);
      let cut = 0;
      for (const id of m.ids) {
        const link = links.get(id);
        if (!link) continue;
        if (m.how === 'silent') link.silence();
        else link.close();
        cut += 1;
      }
      send({ type: 'cut', at: epochNow(), cut });
    } else if (m.cmd === 'stats') {
      const cpu = process.cpuUsage(cpu0);
      send({
        type: 'stats', trigger_deliveries: triggerDeliveries, broadcast_trigger_deliveries: broadcastDeliveries, update_publishes: updatePublishes,
        succeeded_publishes: succeededPublishes, duplicate_succeeded: duplicateSucceeded, cpu_ms: (cpu.user + cpu.system) / 1000, wall_ms: performance.now() - wall0,
      });
    } else if (m.cmd === 'trace') {
      send({ type: 'trace', wpk: [...traceWpk].map(([k, t]) => [k, ...t]), floor: [...traceFloor].map(([k, t]) => [k, ...t]) });
      traceWpk.clear();
      traceFloor.clear();
    } else if (m.cmd === 'stop') {
      void stop();
    }
  });
  // The parent went away without saying so: do not outlive it.
  process.on('disconnect', () => { if (!stopping) process.exit(0); });
}

main().catch((err: Error) => {
  process.stderr.write(`wpk-fleet: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
