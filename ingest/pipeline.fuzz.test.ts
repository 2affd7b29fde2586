/**
 * Property-based fuzzing of telemetry and status payloads through the real
 * pipeline on a real SQLite file: whatever a device sends, nothing crashes,
 * every message is acknowledged, and a good message from another device,
 * sent right after, is committed within a bound ("the fleet keeps flowing").
 *
 * `VPP_FUZZ_RUNS` sets the number of cases (default 5,000, each a handful
 * of payloads); `VPP_FUZZ_RUNS=100000 npx vitest run ingest/pipeline.fuzz.test.ts`
 * is the long run.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIngestHarness, within, type IngestHarness } from './test-harness.ts';

const RUNS = Number(process.env.VPP_FUZZ_RUNS ?? 5_000);
const NOW = Date.now();

const number = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 53, 2 ** 53 + 2, 1e20, -1e20, 1e308, Number.MAX_SAFE_INTEGER, NOW, NOW + 10 * 60_000, NOW - 40 * 86_400_000),
  fc.integer({ min: NOW - 60_000, max: NOW + 60_000 }),
);
const metricName = fc.oneof(fc.constantFrom('powerW', 'socPct', 'tempC', 'energyWh', 'capacityWh', '__proto__', 'constructor', ''), fc.string({ maxLength: 70 }));
const anyJson = fc.jsonValue({ maxDepth: 4 });
const nested = fc.integer({ min: 1, max: 5_000 }).map((depth) => `{"online":true,"x":${'['.repeat(depth)}${']'.repeat(depth)}}`);

const sampleLike = fc.record(
  {
    ts: fc.oneof(number, anyJson),
    seq: fc.oneof(number, anyJson),
    metrics: fc.oneof(fc.dictionary(metricName, fc.oneof(number, anyJson), { maxKeys: 70 }), anyJson),
    extra: anyJson,
  },
  { requiredKeys: [] },
);
const telemetryPayload = fc.oneof(
  sampleLike.map((s) => JSON.stringify(s)),
  fc.array(sampleLike, { maxLength: 5 }).map((samples) => JSON.stringify({ samples })),
  anyJson.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
);
const statusPayload = fc.oneof(
  fc
    .record({ online: fc.oneof(fc.boolean(), anyJson), firmware: fc.oneof(fc.string({ maxLength: 80 }), anyJson) }, { requiredKeys: [] })
    .chain((base) => fc.dictionary(fc.string({ maxLength: 40 }), anyJson, { maxKeys: 20 }).map((extras) => JSON.stringify({ ...extras, ...base }))),
  nested,
  anyJson.map((v) => JSON.stringify(v)),
);
const bytes = fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a));

const message = fc.oneof(
  fc.record({ channel: fc.constant('telemetry' as const), payload: fc.oneof(telemetryPayload.map((s) => Buffer.from(s)), bytes) }),
  fc.record({ channel: fc.constant('status' as const), payload: fc.oneof(statusPayload.map((s) => Buffer.from(s)), bytes) }),
);

describe('pipeline fuzzing: whatever a device sends, the fleet keeps flowing', () => {
  let h: IngestHarness;
  beforeAll(() => {
    h = startIngestHarness({ settings: { maxBatchDelayMs: 1, maxBatchMessages: 500, maxMetricsPerDevice: 64, deadLetterBurst: 1_000_000 } });
  });
  afterAll(async () => {
    await h.close();
  });

  it(`acknowledges every message and commits the good device right after (${RUNS} cases)`, async () => {
    let goodSamples = 0;
    // The good device samples at the wall clock, as a device does: stamped
    // ahead of time, its samples would fall into minutes already closed and
    // be rolled up again and again as the run goes on.
    let lastGoodTs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 4 }), fc.boolean(), async (messages, retained) => {
        const acks = messages.map((m) => h.send(`vpp/v1/devices/bad/${m.channel}`, m.payload, { retained: retained && m.channel === 'status' }));
        lastGoodTs = Math.max(Date.now(), lastGoodTs + 1);
        acks.push(h.sendSample('good', { powerW: goodSamples, socPct: 50 }, lastGoodTs));
        goodSamples++;
        await within(2_000, Promise.all(acks), 'every message acknowledged');
      }),
      { numRuns: RUNS },
    );
    expect(h.ingest.running()).toBe(true);
    const stored = await h.store.queryTelemetry({ deviceId: 'good', fromMs: 0, toMs: Number.MAX_SAFE_INTEGER, limit: 1_000_000 });
    expect(stored).toHaveLength(goodSamples);
    expect(h.source.inflight().count).toBe(0);
    // Whatever the bad device's twin holds was saved and stays serialisable.
    expect(() => JSON.stringify(h.store.getDeviceState('bad'))).not.toThrow();
  }, Math.max(600_000, RUNS * 20));
});
