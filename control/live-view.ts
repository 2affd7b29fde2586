/**
 * The newest live aggregate per topic, fed with the retained messages that
 * ingest publishes on AGGREGATES_FILTER (and, alongside, service heartbeats
 * on SERVICE_HEALTH_FILTER). The caller owns the MQTT subscription and
 * passes every message to `apply`; invalid messages are counted, never
 * thrown, because a bad publisher must not break the API.
 */
import {
  TOPIC_ROOT,
  aggregateTopic,
  decodeAggregateSnapshot,
  decodeServiceHealth,
  type AggregateLevel,
  type AggregateSnapshot,
  type ServiceHealth,
} from '../protocol/index.ts';
import type { LiveView } from './deps.ts';

export type LiveViewRejection = 'not-json' | 'schema' | 'topic-mismatch' | 'unknown-topic' | 'stale';

export interface LiveViewStats {
  applied: number;
  /** Retained messages cleared (empty payload), which removes the entry. */
  cleared: number;
  rejected: Record<LiveViewRejection, number>;
}

export interface FeedableLiveView extends LiveView {
  /** Takes one MQTT message; never throws. */
  apply(topic: string, payload: Buffer): void;
  /** Latest heartbeat of a platform service, as published on serviceHealthTopic(service). */
  getServiceHealth(service: string): ServiceHealth | undefined;
  listServiceHealth(): ServiceHealth[];
  stats(): LiveViewStats;
}

const FLEET_TOPIC = aggregateTopic('fleet', 'fleet');
const AGGREGATE_PREFIX = `${FLEET_TOPIC}/`;
const HEALTH_PREFIX = `${TOPIC_ROOT}/platform/health/`;

/** The fleet has one aggregate on one topic, whatever id its snapshot carries. */
function keyOf(level: AggregateLevel, id: string): string {
  return level === 'fleet' ? '' : id;
}

/** Inverse of aggregateTopic for the topics of site and region aggregates and of the fleet. */
function parseAggregateTopic(topic: string): { level: AggregateLevel; id: string } | undefined {
  if (topic === FLEET_TOPIC) return { level: 'fleet', id: '' };
  for (const level of ['site', 'region'] as const) {
    const prefix = `${AGGREGATE_PREFIX}${level}s/`;
    if (topic.startsWith(prefix) && !topic.slice(prefix.length).includes('/')) return { level, id: topic.slice(prefix.length) };
  }
  return undefined;
}

export function createLiveView(): FeedableLiveView {
  const aggregates: Record<AggregateLevel, Map<string, AggregateSnapshot>> = {
    site: new Map(),
    region: new Map(),
    fleet: new Map(),
  };
  const heartbeats = new Map<string, ServiceHealth>();
  const listeners = new Set<(snapshot: AggregateSnapshot) => void>();
  const stats: LiveViewStats = {
    applied: 0,
    cleared: 0,
    rejected: { 'not-json': 0, schema: 0, 'topic-mismatch': 0, 'unknown-topic': 0, stale: 0 },
  };

  function applyAggregate(topic: string, payload: Buffer): void {
    const decoded = decodeAggregateSnapshot(payload);
    if (!decoded.ok) return void stats.rejected[decoded.reason]++;
    const snapshot = decoded.value;
    // The topic names what the snapshot is about; a payload claiming another entity is a publisher bug.
    if (aggregateTopic(snapshot.level, snapshot.id) !== topic) return void stats.rejected['topic-mismatch']++;
    const byId = aggregates[snapshot.level];
    const key = keyOf(snapshot.level, snapshot.id);
    const current = byId.get(key);
    // A retained copy can arrive after a newer live one (resubscribe); keep the newest.
    if (current && current.ts > snapshot.ts) return void stats.rejected.stale++;
    byId.set(key, snapshot);
    stats.applied++;
    for (const listener of listeners) listener(snapshot);
  }

  function clearAggregate(topic: string): void {
    const entry = parseAggregateTopic(topic);
    if (entry && aggregates[entry.level].delete(keyOf(entry.level, entry.id))) stats.cleared++;
  }

  function applyHeartbeat(topic: string, payload: Buffer): void {
    const service = topic.slice(HEALTH_PREFIX.length);
    if (payload.length === 0) {
      if (heartbeats.delete(service)) stats.cleared++;
      return;
    }
    const decoded = decodeServiceHealth(payload);
    if (!decoded.ok) return void stats.rejected[decoded.reason]++;
    if (decoded.value.service !== service) return void stats.rejected['topic-mismatch']++;
    const current = heartbeats.get(service);
    if (current && current.ts > decoded.value.ts) return void stats.rejected.stale++;
    heartbeats.set(service, decoded.value);
    stats.applied++;
  }

  return {
    apply(topic, payload) {
      if (topic === FLEET_TOPIC || topic.startsWith(AGGREGATE_PREFIX)) {
        // An empty retained message clears the topic (MQTT-3.3.1-10): the entity is gone.
        if (payload.length === 0) clearAggregate(topic);
        else applyAggregate(topic, payload);
      } else if (topic.startsWith(HEALTH_PREFIX) && !topic.slice(HEALTH_PREFIX.length).includes('/')) {
        applyHeartbeat(topic, payload);
      } else {
        stats.rejected['unknown-topic']++;
      }
    },
    getAggregate(level, id) {
      return aggregates[level].get(keyOf(level, id));
    },
    listAggregates(level) {
      return [...aggregates[level].values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
    onAggregate(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    getServiceHealth(service) {
      return heartbeats.get(service);
    },
    listServiceHealth() {
      return [...heartbeats.values()].sort((a, b) => (a.service < b.service ? -1 : 1));
    },
    stats() {
      return { ...stats, rejected: { ...stats.rejected } };
    },
  };
}
