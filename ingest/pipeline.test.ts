/**
 * The pipeline on a real SQLite file, fed by hand through the sources'
 * outlet standing in for the broker: acknowledgements come only after commit, bad messages are
 * dead-lettered and acknowledged, redeliveries are stored once, a failing
 * store is retried without acknowledging, and stopping flushes rollups.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, openSqliteStore, type SqliteStore, type TelemetryStore } from '../store/index.ts';
import { IngestCounters } from './counters.ts';
import { startIngest, type IngestSettings } from './ingest.ts';
import { TEST_SETTINGS, telemetryWith } from './test-harness.ts';
import { createHandFedSource } from './test-source.ts';

// Small batches and a fast live tick: batches and aggregates show within a test.
const settings: IngestSettings = { ...TEST_SETTINGS, maxBatchMessages: 3, maxBatchDelayMs: 10, liveIntervalMs: 50 };

describe('ingest pipeline', () => {
  let dir: string;
  let store: SqliteStore;
  const logger = pino({ level: 'silent' });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vpp-ingest-'));
    store = openSqliteStore({ file: join(dir, 'vpp.db') });
    store.upsertSite({ id: 's1', region: 'north', name: 'Site 1' });
    store.createDevice({ id: 'b1', type: 'battery', siteId: 's1', secretHash: 'x' }, Date.now());
    store.createDevice({ id: 'p1', type: 'solar', siteId: 's1', secretHash: 'x' }, Date.now());
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function harness(telemetry: TelemetryStore = store) {
    const counters = new IngestCounters();
    const source = createHandFedSource(counters);
    const published = new Map<string, Buffer>();
    const acks: Array<{ topic: string; storedAtAck: Promise<boolean> }> = [];
    const ingest = startIngest({
      source,
      registry: store,
      telemetry,
      twins: store,
      deadLetters: store,
      publish: (topic, payload) => published.set(topic, payload),
      clock: Date.now,
      logger,
      settings,
      counters,
    });
    let nextTs = Date.now() - 10_000;
    const send = (topic: string, payload: unknown, ts?: number) => {
      const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
      const clientId = topic.startsWith('vpp/v1/devices/') ? (topic.split('/')[3] ?? null) : null;
      return source.push({ topic, payload: Buffer.from(body), clientId, receivedAtMs: Date.now() }, () => {
        // What the store holds at the moment of the ack.
        const storedAtAck =
          ts === undefined || clientId === null
            ? Promise.resolve(true)
            : store.queryTelemetry({ deviceId: clientId, fromMs: ts, toMs: ts + 1, limit: 1 }).then((r) => r.length === 1);
        acks.push({ topic, storedAtAck });
      });
    };
    const sendSample = (deviceId: string, metrics: Record<string, number>, ts = nextTs++) => {
      send(`vpp/v1/devices/${deviceId}/telemetry`, { ts, seq: ts, metrics }, ts);
      return ts;
    };
    const waitForAcks = async (n: number) => {
      const deadline = Date.now() + 10_000;
      while (acks.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${acks.length} of ${n} acks`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    return { ingest, counters, source, published, acks, send, sendSample, waitForAcks };
  }

  it('acknowledges telemetry only once it is in the store', async () => {
    const h = harness();
    for (let i = 0; i < 7; i++) h.sendSample('b1', { powerW: i * 100, socPct: 50 });
    await h.waitForAcks(7);
    expect(await Promise.all(h.acks.map((a) => a.storedAtAck))).toEqual(Array(7).fill(true));
    expect(h.counters.batchesCommitted).toBeGreaterThanOrEqual(3);
    expect(h.source.inflight().count).toBe(0);
    await h.ingest.stop();
  });

  it('dead-letters bad messages with their reason and still stores the good ones', async () => {
    const h = harness();
    h.send('vpp/v1/devices/b1/telemetry', 'not json at all');
    h.send('vpp/v1/devices/ghost/telemetry', { ts: Date.now(), seq: 1, metrics: { powerW: 1 } });
    h.sendSample('b1', { socPct: 250 });
    const good = h.sendSample('b1', { socPct: 42 });
    await h.waitForAcks(4);
    const letters = store.listDeadLetters({ limit: 10 });
    expect(letters.map((l) => l.reason).sort()).toEqual(['absurd-value', 'not-json', 'unknown-device']);
    expect(letters.find((l) => l.reason === 'not-json')!.payload.toString()).toBe('not json at all');
    expect(h.counters.snapshot()).toMatchObject({ 'rejected.not-json': 1, 'rejected.unknown-device': 1, 'rejected.absurd-value': 1, acceptedMessages: 1 });
    const stored = await store.queryTelemetry({ deviceId: 'b1', fromMs: 0, toMs: Date.now() + 1, limit: 10 });
    expect(stored.map((p) => p.ts)).toEqual([good]);
    await h.ingest.stop();
  });

  it('stores a redelivered message once and counts the duplicate', async () => {
    const h = harness();
    const ts = h.sendSample('b1', { powerW: 1 });
    h.sendSample('b1', { powerW: 1 }, ts);
    await h.waitForAcks(2);
    expect(h.counters.duplicateSamples).toBe(1);
    expect(h.counters.samplesCommitted).toBe(1);
    await h.ingest.stop();
  });

  it('keeps the twin: latest metrics, status, presence from connection events and wills, saved to the store', async () => {
    const h = harness();
    const t0 = Date.now();
    h.sendSample('b1', { powerW: 1, socPct: 10 });
    h.sendSample('b1', { powerW: 2 });
    h.send('vpp/v1/platform/presence/p1', { deviceId: 'p1', connected: true, reason: 'connected', ts: t0, brokerStartedAtMs: t0 - 1000 });
    h.send('vpp/v1/devices/p1/status', { online: true, firmware: '2.0.0' });
    await h.waitForAcks(4);
    expect(store.getDeviceState('b1')).toMatchObject({ presence: 'online', metrics: { powerW: 2, socPct: 10 } });
    expect(store.getDeviceState('p1')).toMatchObject({ presence: 'online', presenceSinceMs: t0, status: { online: true, firmware: '2.0.0' } });
    // The will: offline from when it was received.
    h.send('vpp/v1/devices/p1/status', { online: false });
    await h.waitForAcks(5);
    expect(store.getDeviceState('p1')).toMatchObject({ presence: 'offline' });
    await h.ingest.stop();
  });

  it('retries a transiently failing store without acknowledging, then acknowledges', async () => {
    let failuresLeft = 2;
    const flaky = telemetryWith(store, {
      writeTelemetry: async (points) => {
        if (failuresLeft-- > 0) throw new StoreError('unavailable', 'database is locked');
        return store.writeTelemetry(points);
      },
    });
    const h = harness(flaky);
    h.sendSample('b1', { powerW: 7 });
    await h.waitForAcks(1);
    expect(h.counters.writeFailures).toBe(2);
    expect(await h.acks[0]!.storedAtAck).toBe(true);
    await h.ingest.stop();
  });

  it('rolls up a late sample (a minute already closed) again from the store', async () => {
    const h = harness();
    const minute = Math.floor((Date.now() - 180_000) / 60_000) * 60_000;
    await store.writeTelemetry([{ deviceId: 'b1', ts: minute + 1_000, seq: 1, metrics: { powerW: 10 } }]);
    h.sendSample('b1', { powerW: 30 }, minute + 2_000);
    await h.waitForAcks(1);
    await h.ingest.stop();
    expect(h.counters.snapshot().deviceMinutesRecomputed).toBe(1);
    const [row] = await store.queryRollups({ kind: 'device', entityId: 'b1', fromMs: minute, toMs: minute + 60_000, bucketMs: 60_000 });
    // Both samples, the one stored before and the late one, are in the minute.
    expect(row).toMatchObject({ count: 2, mean: 20, last: 30 });
  });

  it('publishes live aggregates with coverage and flushes rollups on stop', async () => {
    const h = harness();
    const now = Date.now();
    h.sendSample('b1', { powerW: 1000, energyWh: 5000, capacityWh: 10_000 }, now - 2);
    h.sendSample('b1', { powerW: 3000, energyWh: 4990, capacityWh: 10_000 }, now - 1);
    await h.waitForAcks(2);
    await new Promise((r) => setTimeout(r, 120));
    const fleet = JSON.parse(h.published.get('vpp/v1/fleet')!.toString()) as { coverage: unknown; metrics: { batteryPowerW: number; socPct: number } };
    expect(fleet.coverage).toEqual({ devicesReporting: 1, devicesTotal: 2, ratio: 0.5 });
    expect(fleet.metrics.batteryPowerW).toBe(3000);
    expect(fleet.metrics.socPct).toBeCloseTo(49.9);
    expect(h.published.has('vpp/v1/fleet/sites/s1')).toBe(true);
    expect(h.published.has('vpp/v1/fleet/regions/north')).toBe(true);
    await h.ingest.stop();
    const range = { fromMs: now - 120_000, toMs: now + 120_000, bucketMs: 60_000 };
    const rows = await store.queryRollups({ kind: 'device', entityId: 'b1', ...range, metrics: ['powerW'] });
    const total = rows.reduce((n, r) => n + r.count, 0);
    expect(total).toBe(2);
    const health = JSON.parse(h.published.get('vpp/v1/platform/health/ingest')!.toString()) as { ok: boolean };
    expect(health.ok).toBe(false);
  });
});
