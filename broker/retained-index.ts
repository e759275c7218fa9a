/**
 * aedes's memory persistence answers every SUBSCRIBE by testing every
 * retained message against the pattern (aedes-persistence 11,
 * retainedMessagesByPattern). An agent subscribes to two exact topics on each
 * connect, so a fleet reconnecting after a broker restart costs N x 2N topic
 * matches: 5,000 agents meant 50 million, long enough for connects to time
 * out and retry, which made it worse. Exact topics (no + or #) are answered
 * from an index instead; wildcard patterns still take aedes's path.
 */
import { Readable } from 'node:stream';
import persistencePackage, { type AedesPersistence, type Packet } from 'aedes-persistence';

// A CommonJS module whose types declare an ES default: at run time the import is the factory itself.
const memoryPersistence = persistencePackage as unknown as () => AedesPersistence;

const hasWildcard = (pattern: string): boolean => pattern.includes('+') || pattern.includes('#');

async function* concat(first: Packet[], rest: Readable | undefined): AsyncGenerator<Packet> {
  yield* first;
  if (rest) for await (const packet of rest) yield packet as Packet;
}

/** aedes's memory persistence, with exact-topic retained lookups from an index. */
export function indexedMemoryPersistence(): AedesPersistence {
  const persistence = memoryPersistence();
  const byTopic = new Map<string, Packet>();
  const storeRetained = persistence.storeRetained.bind(persistence);
  const byPatterns = persistence.createRetainedStreamCombi.bind(persistence);

  persistence.storeRetained = (packet: Packet, cb: Parameters<AedesPersistence['storeRetained']>[1]) => {
    // Same rule as aedes-persistence: an empty payload deletes; the stored copy is shallow.
    if (packet.cmd === 'publish') {
      if (packet.payload.length === 0) byTopic.delete(packet.topic);
      else byTopic.set(packet.topic, { ...packet });
    }
    return storeRetained(packet, cb);
  };
  persistence.createRetainedStreamCombi = (patterns: string[]) => {
    const exact = patterns.filter((p) => !hasWildcard(p));
    const wild = patterns.filter(hasWildcard);
    const found = exact.map((t) => byTopic.get(t)).filter((p): p is Packet => p !== undefined);
    return Readable.from(concat(found, wild.length > 0 ? byPatterns(wild) : undefined));
  };
  return persistence;
}
