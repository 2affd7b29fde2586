/**
 * The InfluxDB store's write path against a real VictoriaMetrics (Debian's
 * victoria-metrics, on a free loopback port), which takes the InfluxDB line
 * protocol on /write and /api/v2/write but has no InfluxQL: the store runs
 * with `reads: 'none'`. A write must be confirmed, then readable through
 * VictoriaMetrics' own export API, and a server that is down must make it
 * reject.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVictoriaMetrics, type RunningVictoriaMetrics } from '../test/support/influx-servers.ts';
import { InfluxTelemetry } from './influx-telemetry.ts';
import { describeAnyDevice, silenceInfluxClient } from './influx-test-support.ts';
import { StoreError, type TelemetryPoint } from './types.ts';

const FAST_RETRIES = { maxRetries: 2, minRetryDelayMs: 5, maxRetryDelayMs: 20, maxRetryTimeMs: 5_000 };
const MINUTE_MS = 60_000;

let vm: RunningVictoriaMetrics;

beforeAll(async () => {
  silenceInfluxClient();
  vm = await startVictoriaMetrics();
}, 60_000);

afterAll(async () => {
  await vm?.stop();
});

function storeOn(url: string, extra: { org?: string; bucket?: string } = {}): InfluxTelemetry {
  return new InfluxTelemetry({ url, bucket: extra.bucket ?? 'vpp', ...(extra.org ? { org: extra.org } : {}), describeDevice: describeAnyDevice, reads: 'none', write: FAST_RETRIES });
}

describe('InfluxTelemetry writing to VictoriaMetrics', () => {
  // Recent times: VictoriaMetrics drops samples outside its retention (and says 204).
  const t0 = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 10 * MINUTE_MS;

  it('declares what it cannot do there: no reads, no lookup of stored duplicates', async () => {
    const store = storeOn(vm.url);
    try {
      expect(store.capabilities).toEqual({ reads: false, detectsStoredDuplicates: false });
      for (const read of [
        store.queryTelemetry({ deviceId: 'd', fromMs: 0, toMs: 1, limit: 1 }),
        store.queryRollups({ kind: 'fleet', entityId: 'fleet', fromMs: 0, toMs: 1, bucketMs: MINUTE_MS }),
      ]) {
        const error = await read.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).code).toBe('invalid');
      }
      await store.checkHealth();
    } finally {
      await store.close();
    }
  });

  it('resolves a telemetry batch once VictoriaMetrics confirmed it, and its samples are then exported exactly', async () => {
    const store = storeOn(vm.url);
    try {
      const devices = Array.from({ length: 30 }, (_, i) => `vm-dev-${i}`);
      const points: TelemetryPoint[] = [];
      for (let s = 0; s < 20; s++) for (const d of devices) points.push({ deviceId: d, ts: t0 + s * 1000, seq: 1_000_000 + s, metrics: { powerW: s - 10.25, socPct: 50 + s / 8 } });
      // A repeat within the batch is written once and reported so.
      const result = await store.writeTelemetry([...points, points[0]!]);
      expect(result.inserted).toEqual([...points.map(() => true), false]);

      const device = devices[7]!;
      const { type, siteId, region } = describeAnyDevice(device)!;
      const series = await vm.exportSeries(`{__name__=~"${type}_.*", device="${device}"}`);
      const byName = new Map(series.map((s) => [s.metric.__name__, s]));
      expect([...byName.keys()].sort()).toEqual([`${type}_powerW`, `${type}_seq`, `${type}_socPct`]);
      const mine = points.filter((p) => p.deviceId === device);
      expect(byName.get(`${type}_powerW`)!.timestamps).toEqual(mine.map((p) => p.ts));
      expect(byName.get(`${type}_powerW`)!.values).toEqual(mine.map((p) => p.metrics.powerW));
      expect(byName.get(`${type}_seq`)!.values).toEqual(mine.map((p) => p.seq));
      // Tags become labels; /write?db= adds the database as `db`.
      expect(byName.get(`${type}_socPct`)!.metric).toEqual({ __name__: `${type}_socPct`, device, site: siteId, region, db: 'vpp' });
    } finally {
      await store.close();
    }
  });

  it('writes a redelivered sample again and reports it new: without InfluxQL nothing finds it stored', async () => {
    const store = storeOn(vm.url);
    try {
      const point = { deviceId: 'vm-redelivered', ts: t0, seq: 1, metrics: { powerW: 5 } };
      expect(await store.writeTelemetry([point])).toEqual({ inserted: [true] });
      expect(await store.writeTelemetry([point])).toEqual({ inserted: [true] });
      const { type } = describeAnyDevice(point.deviceId)!;
      const [series] = await vm.exportSeries(`${type}_powerW{device="vm-redelivered"}`);
      // Both samples are kept unless VictoriaMetrics runs with -dedup.minScrapeInterval (see store/README.md).
      expect(series!.timestamps).toEqual([t0, t0]);
    } finally {
      await store.close();
    }
  });

  it('writes rollups as one series per field, labelled kind, entity and metric', async () => {
    const store = storeOn(vm.url);
    try {
      const rollups = [0, 1, 2].map((m) => ({
        kind: 'region' as const,
        entityId: 'vm-north',
        metric: 'powerW',
        bucketStartMs: t0 + m * MINUTE_MS,
        min: -m,
        max: m + 0.5,
        mean: m / 3,
        last: m,
        count: 10 + m,
        devicesReporting: 4,
        devicesTotal: 5,
      }));
      await store.writeRollups(rollups);
      const [mean] = await vm.exportSeries('rollups_mean{entity="vm-north"}');
      expect(mean!.metric).toEqual({ __name__: 'rollups_mean', kind: 'region', entity: 'vm-north', metric: 'powerW', db: 'vpp' });
      expect(mean!.timestamps).toEqual(rollups.map((r) => r.bucketStartMs));
      // VictoriaMetrics keeps 12 significant decimal digits (InfluxDB keeps the double): 1/3 comes back as 0.333333333333.
      expect(mean!.values).toEqual([0, 0.333333333333, 0.666666666666]);
      const [count] = await vm.exportSeries('rollups_count{entity="vm-north"}');
      expect(count!.values).toEqual([10, 11, 12]);
    } finally {
      await store.close();
    }
  });

  it('writes through the v2 API (/api/v2/write) when an org is configured', async () => {
    const store = storeOn(vm.url, { org: 'vpp-org', bucket: 'vpp-bucket' });
    try {
      await store.writeTelemetry([{ deviceId: 'vm-v2', ts: t0, seq: 1, metrics: { powerW: 42 } }]);
      const { type } = describeAnyDevice('vm-v2')!;
      const [series] = await vm.exportSeries(`${type}_powerW{device="vm-v2"}`);
      expect(series!.values).toEqual([42]);
      // The v2 API carries no database: no `db` label.
      expect(series!.metric.db).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("rejects with 'unavailable' once VictoriaMetrics is down, and health says so", async () => {
    const own = await startVictoriaMetrics();
    const store = storeOn(own.url);
    try {
      await store.writeTelemetry([{ deviceId: 'vm-down', ts: t0, seq: 1, metrics: { powerW: 1 } }]);
      await store.checkHealth();
      await own.stop();
      const error = await store.writeTelemetry([{ deviceId: 'vm-down', ts: t0 + 1000, seq: 2, metrics: { powerW: 2 } }]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe('unavailable');
      const health = await store.checkHealth().catch((e: unknown) => e);
      expect((health as StoreError).code).toBe('unavailable');
    } finally {
      await store.close();
      await own.stop();
    }
  });
});
