/**
 * Test support: ingest on a real SQLite file, fed by hand. Each `send`
 * returns a promise of the message's acknowledgement.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openSqliteStore, type SqliteStore, type TelemetryStore } from '../store/index.ts';
import { IngestCounters } from './counters.ts';
import { startIngest, type Ingest, type IngestSettings } from './ingest.ts';
import { createHandFedSource, type HandFedSource } from './test-source.ts';

export const TEST_SETTINGS: IngestSettings = {
  maxBatchMessages: 50,
  maxBatchDelayMs: 2,
  writeRetryDelayMs: 5,
  maxFutureMs: 60_000,
  maxAgeMs: 86_400_000,
  maxMetricsPerDevice: 16,
  rollupFlushEveryMs: 50,
  rollupLatenessMs: 1_000,
  liveIntervalMs: 1_000,
  liveWindowMs: 60_000,
  heartbeatIntervalMs: 1_000,
  directoryRefreshMs: 1_000,
  staleAfterMs: 30_000,
  presenceCheckMs: 1_000,
  stallAfterMs: 5_000,
  shutdownTimeoutMs: 5_000,
  deadLetterBurst: 100,
  deadLettersPerMinute: 60,
};

export interface IngestHarness {
  store: SqliteStore;
  ingest: Ingest;
  source: HandFedSource;
  counters: IngestCounters;
  published: Map<string, Buffer>;
  /** Sends a payload (an object is JSON-encoded) on a topic as if from the device the topic names. */
  send(topic: string, payload: unknown, options?: { retained?: boolean; clientId?: string | null }): Promise<void>;
  /** Sends one telemetry sample of `deviceId`. */
  sendSample(deviceId: string, metrics: Record<string, number>, ts?: number): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  settings?: Partial<IngestSettings>;
  /** Wraps the real store's telemetry port, e.g. to inject failures. */
  telemetry?: (store: SqliteStore) => TelemetryStore;
  devices?: Array<{ id: string; type: 'battery' | 'solar' | 'meter' }>;
  clock?: () => number;
}

export function startIngestHarness(options: HarnessOptions = {}): IngestHarness {
  const dir = mkdtempSync(join(tmpdir(), 'vpp-ingest-'));
  const store = openSqliteStore({ file: join(dir, 'vpp.db') });
  const clock = options.clock ?? Date.now;
  store.upsertSite({ id: 's1', region: 'north', name: 'Site 1' });
  for (const device of options.devices ?? [{ id: 'good', type: 'battery' }, { id: 'bad', type: 'battery' }]) {
    store.createDevice({ id: device.id, type: device.type, siteId: 's1', secretHash: 'x' }, clock());
  }
  const counters = new IngestCounters();
  const source = createHandFedSource(counters);
  const published = new Map<string, Buffer>();
  const ingest = startIngest({
    source,
    registry: store,
    telemetry: options.telemetry ? options.telemetry(store) : store,
    twins: store,
    deadLetters: store,
    publish: (topic, payload) => published.set(topic, payload),
    clock,
    logger: pino({ level: 'silent' }),
    settings: { ...TEST_SETTINGS, ...options.settings },
    counters,
  });
  let nextTs = clock() - 30_000;
  const send: IngestHarness['send'] = (topic, payload, sendOptions = {}) => {
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    const clientId = sendOptions.clientId !== undefined ? sendOptions.clientId : (topic.split('/')[3] ?? null);
    return source.push({ topic, payload: body, clientId, receivedAtMs: clock(), retained: sendOptions.retained ?? false });
  };
  return {
    store,
    ingest,
    source,
    counters,
    published,
    send,
    sendSample: (deviceId, metrics, ts = nextTs++) => send(`vpp/v1/devices/${deviceId}/telemetry`, { ts, seq: ts, metrics }),
    async close() {
      await ingest.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The store's telemetry port with some methods replaced, e.g. to inject failures. */
export function telemetryWith(store: SqliteStore, overrides: Partial<TelemetryStore>): TelemetryStore {
  return {
    writeTelemetry: (points) => store.writeTelemetry(points),
    writeRollups: (rows) => store.writeRollups(rows),
    queryTelemetry: (q) => store.queryTelemetry(q),
    queryRollups: (q) => store.queryRollups(q),
    queryRollupColumns: (q) => store.queryRollupColumns(q),
    checkHealth: () => store.checkHealth(),
    close: async () => undefined,
    ...overrides,
  };
}

/** Resolves with the promise's value, or rejects when it takes longer than `ms`. */
export async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
