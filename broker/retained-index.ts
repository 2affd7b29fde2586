/**
 * The broker's persistence: aedes' in-memory persistence, with retained
 * messages kept in an index of our own.
 *
 * On every SUBSCRIBE aedes asks the persistence for the retained messages
 * matching the new filters (MQTT-3.3.1-6). The in-memory persistence answers
 * by testing each filter against every retained topic, so one subscription
 * costs O(retained messages). Every device keeps a retained status and
 * subscribes to its commands topic on each connect, so a fleet of N devices
 * connecting cost O(N²): measured at 3,000 devices, a fifth of the broker's
 * CPU went to that scan, and connects slowed to ~200/s.
 *
 * Here a filter without wildcards (a device's own commands topic) is one map
 * lookup; a filter with wildcards (a service watching statuses) scans, as
 * before. The inner persistence never sees a retained message: its
 * `storeRetained`, `createRetainedStream` and `createRetainedStreamCombi`
 * are the only code that reads or writes them, and all three are replaced.
 */
import { Readable } from 'node:stream';
import type { AedesPublishPacket } from 'aedes';
import aedesPersistence, { type AedesMemoryPersistence } from 'aedes-persistence';
import { matchesFilter } from './topic-filter.ts';

// A CommonJS package whose typings declare an ES default export: imported
// from ESM, the default is the factory itself (as aedes imports it).
const memoryPersistence = aedesPersistence as unknown as () => AedesMemoryPersistence;

/** Retained messages are PUBLISH packets. */
type Packet = AedesPublishPacket;

/** Topic -> the retained message on it. An empty payload deletes (MQTT-3.3.1-10). */
export class RetainedIndex {
  private readonly byTopic = new Map<string, Packet>();

  get size(): number {
    return this.byTopic.size;
  }

  store(packet: Packet): void {
    if (packet.payload.length === 0) this.byTopic.delete(packet.topic);
    // A shallow copy, as the in-memory persistence keeps: aedes reuses the packet object.
    else this.byTopic.set(packet.topic, { ...packet });
  }

  /** Retained messages matching any of `filters`, each once, filters in order. */
  *match(filters: readonly string[]): Generator<Packet> {
    const seen = filters.length > 1 ? new Set<string>() : undefined;
    for (const filter of filters) {
      if (!hasWildcard(filter)) {
        const packet = this.byTopic.get(filter);
        if (packet !== undefined && !seen?.has(packet.topic)) {
          seen?.add(packet.topic);
          yield packet;
        }
        continue;
      }
      const filterLevels = filter.split('/');
      for (const [topic, packet] of this.byTopic) {
        if (seen?.has(topic) || !matchesFilter(filterLevels, topic)) continue;
        seen?.add(topic);
        yield packet;
      }
    }
  }
}

function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

/** aedes' in-memory persistence with retained messages in a `RetainedIndex`. */
export function createBrokerPersistence(): AedesMemoryPersistence {
  const persistence = memoryPersistence();
  const retained = new RetainedIndex();
  // The callback form is the declared one; aedes itself calls without a callback and awaits the promise.
  persistence.storeRetained = ((packet: Packet, callback?: (error: Error | null) => void) => {
    retained.store(packet);
    if (callback) {
      process.nextTick(callback, null);
      return undefined;
    }
    return Promise.resolve();
  }) as AedesMemoryPersistence['storeRetained'];
  persistence.createRetainedStream = (filter: string) => Readable.from(retained.match([filter]), { objectMode: true });
  persistence.createRetainedStreamCombi = (filters: string[]) => Readable.from(retained.match(filters), { objectMode: true });
  return persistence;
}
