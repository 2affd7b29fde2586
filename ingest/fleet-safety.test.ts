/**
 * One device can never stall, blind or fill ingest for the others. Each
 * case runs a bad device and a good one side by side through the real
 * pipeline on a real SQLite file, and checks that the good device's data is
 * committed (and acknowledged) right after the bad input, and that the bad
 * input was acknowledged and dead-lettered (or only counted) with its reason.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StoreError, type SqliteStore, type TelemetryStore } from '../store/index.ts';
import { startIngestHarness, telemetryWith, within, type HarnessOptions, type IngestHarness } from './test-harness.ts';

let harness: IngestHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

function start(options: HarnessOptions = {}): IngestHarness {
  harness = startIngestHarness(options);
  return harness;
}

async function storedSamples(store: SqliteStore, deviceId: string): Promise<number> {
  const points = await store.queryTelemetry({ deviceId, fromMs: 0, toMs: Number.MAX_SAFE_INTEGER, limit: 100_000 });
  return points.length;
}

/** The good device's sample is committed and acknowledged within `ms`. */
async function expectFleetFlows(h: IngestHarness, ms = 2_000): Promise<void> {
  const before = await storedSamples(h.store, 'good');
  await within(ms, h.sendSample('good', { powerW: 100, socPct: 50 }), 'the good device is acknowledged');
  expect(await storedSamples(h.store, 'good')).toBe(before + 1);
}

/** The telemetry port refusing, deterministically, any batch holding a point with `poisonW`. */
function refusing(store: SqliteStore): TelemetryStore {
  return telemetryWith(store, {
    writeTelemetry: async (points) => {
      if (points.some((p) => p.metrics.poisonW !== undefined)) throw new StoreError('invalid', 'value out of range for the column');
      return store.writeTelemetry(points);
    },
  });
}

/** The telemetry port failing every write as a busy database does, until `heal()`. */
function flaky(store: SqliteStore) {
  let broken = true;
  const telemetry = telemetryWith(store, {
    writeTelemetry: async (points) => {
      if (broken) throw new StoreError('unavailable', 'database is locked');
      return store.writeTelemetry(points);
    },
  });
  return { telemetry, heal: () => (broken = false) };
}

describe('fleet safety: a bad device and a good one side by side', () => {
  it('finding 1: a seq beyond the safe integer range is dead-lettered at the edge; the fleet keeps flowing', async () => {
    const h = start();
    const now = Date.now();
    await within(2_000, h.send('vpp/v1/devices/bad/telemetry', `{"ts":${now},"seq":100000000000000000000,"metrics":{"socPct":50}}`), 'the poison is acknowledged');
    await expectFleetFlows(h);
    const [letter] = h.store.listDeadLetters({ limit: 10 });
    expect(letter).toMatchObject({ reason: 'schema', clientId: 'bad' });
    expect(letter!.detail).toMatch(/seq/);
  });

  it('isolates a message the store refuses: the rest of its batch commits, it is dead-lettered alone', async () => {
    const h = start({ telemetry: refusing, settings: { maxBatchDelayMs: 20, maxBatchMessages: 100 } });
    const acks: Array<Promise<void>> = [];
    for (let i = 0; i < 20; i++) acks.push(h.sendSample('good', { powerW: i }));
    acks.push(h.sendSample('bad', { poisonW: 1 }));
    for (let i = 20; i < 40; i++) acks.push(h.sendSample('good', { powerW: i }));
    await within(2_000, Promise.all(acks), 'every message acknowledged');
    expect(await storedSamples(h.store, 'good')).toBe(40);
    expect(await storedSamples(h.store, 'bad')).toBe(0);
    const letters = h.store.listDeadLetters({ limit: 10 });
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ reason: 'store-refused', clientId: 'bad' });
    expect(letters[0]!.detail).toMatch(/out of range/);
    expect(h.counters.batchSplits).toBeGreaterThan(0);
    expect(h.counters.snapshot()['rejected.store-refused']).toBe(1);
    await expectFleetFlows(h);
  });

  it('finding 2: a deeply nested or oversized status is refused before it reaches the twin', async () => {
    const h = start();
    const deep = `{"online":true,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const compactDeep = `{"online":true,"x":${'['.repeat(1_000)}${']'.repeat(1_000)}}`;
    await within(2_000, h.send('vpp/v1/devices/bad/status', deep), 'the deep status is acknowledged');
    await within(2_000, h.send('vpp/v1/devices/bad/status', compactDeep), 'the nested status is acknowledged');
    await expectFleetFlows(h);
    expect(h.store.countDeadLettersByReason()).toEqual({ schema: 2 });
    expect(h.store.getDeviceState('bad')?.status ?? null).toBeNull();
  });

  it('finding 2: a status keeps its known fields and a bounded set of scalar extras', async () => {
    const h = start();
    await h.send('vpp/v1/devices/bad/status', { online: true, firmware: '1.2.3', model: 'X1', cells: 16 });
    const extras = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`extra${i}`, i]));
    await h.send('vpp/v1/devices/bad/status', { online: true, ...extras });
    await expectFleetFlows(h);
    expect(h.store.getDeviceState('bad')?.status).toEqual({ online: true, firmware: '1.2.3', model: 'X1', cells: 16 });
    expect(h.store.countDeadLettersByReason()).toEqual({ schema: 1 });
  });

  it('finding 4: distinct metric names per device are capped; beyond it telemetry is dead-lettered', async () => {
    const h = start({ settings: { maxMetricsPerDevice: 16 } });
    for (let i = 0; i < 4; i++) {
      const metrics = Object.fromEntries(Array.from({ length: 5 }, (_, j) => [`m${i}x${j}W`, j]));
      await h.sendSample('bad', metrics);
    }
    await expectFleetFlows(h);
    // 3 messages of 5 new names fit (15); the 4th would make 20.
    expect(Object.keys(h.store.getDeviceState('bad')!.metrics)).toHaveLength(15);
    expect(h.store.countDeadLettersByReason()).toEqual({ 'too-many-metrics': 1 });
    // Known names still go through.
    await h.sendSample('bad', { m0x0W: 7 });
    expect(h.store.getDeviceState('bad')!.metrics.m0x0W).toBe(7);
  });

  it('finding 5: a retained telemetry copy (from a broker that allowed it) is dead-lettered, not stored again', async () => {
    const h = start();
    await h.send('vpp/v1/devices/bad/telemetry', { ts: Date.now(), seq: 1, metrics: { powerW: 1 } }, { retained: true });
    await expectFleetFlows(h);
    expect(await storedSamples(h.store, 'bad')).toBe(0);
    expect(h.store.countDeadLettersByReason()).toEqual({ 'retained-telemetry': 1 });
  });

  it('finding 3: a device flooding rejects stores only its budget of dead letters; the rest is counted', async () => {
    const h = start({ settings: { deadLetterBurst: 20, deadLettersPerMinute: 1 } });
    const big = Buffer.alloc(200 * 1024, 'x');
    await within(5_000, Promise.all(Array.from({ length: 100 }, () => h.send('vpp/v1/devices/bad/telemetry', big))), 'the flood is acknowledged');
    await expectFleetFlows(h);
    expect(h.counters.snapshot()['rejected.not-json']).toBe(100);
    expect(h.counters.deadLettersSuppressed).toBe(80);
    expect(h.store.countDeadLettersByReason()).toEqual({ 'not-json': 20 });
    // Another device's rejects still get stored: the budget is per device.
    await h.send('vpp/v1/devices/good/telemetry', 'nope');
    expect(h.store.countDeadLettersByReason()).toEqual({ 'not-json': 21 });
  });

  it('reports the pipeline stalled while messages wait and nothing commits, and recovers', async () => {
    let store: { heal(): void } | undefined;
    const h = start({
      settings: { stallAfterMs: 100 },
      telemetry: (s) => {
        const f = flaky(s);
        store = f;
        return f.telemetry;
      },
    });
    const acked = h.sendSample('good', { powerW: 1 });
    const deadline = Date.now() + 3_000;
    while (!h.ingest.liveness().stalled) {
      if (Date.now() > deadline) throw new Error('never reported stalled');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(h.ingest.liveness()).toMatchObject({ inflight: 1, lastCommitAtMs: null, stalled: true });
    expect(h.ingest.liveness().oldestUnackedAgeMs).toBeGreaterThan(100);
    expect(h.counters.writeFailures).toBeGreaterThan(0);
    store!.heal();
    await within(3_000, acked, 'acknowledged once the store is back');
    expect(h.ingest.liveness()).toMatchObject({ inflight: 0, oldestUnackedAgeMs: null, stalled: false });
  });

  it('stops within its bound when the store never comes back, acknowledging nothing it did not commit', async () => {
    const h = start({ settings: { shutdownTimeoutMs: 300 }, telemetry: (s) => flaky(s).telemetry });
    let acked = false;
    void h.sendSample('good', { powerW: 1 }).then(() => (acked = true));
    const startedMs = Date.now();
    await within(2_000, h.ingest.stop(), 'stop');
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(250);
    expect(acked).toBe(false);
    expect(h.source.inflight().count).toBe(1);
  });
});
