/**
 * Contract of TelemetryStore, run by every implementation (embedded SQLite,
 * InfluxDB). It speaks only through the port: no SQL, no assumption about
 * how or where points are kept, and it uses its own device and entity ids per
 * test so that a server-backed store which keeps data between tests still
 * passes.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, rollupsToColumns, type Rollup, type TelemetryPoint, type TelemetryStore } from '../types.ts';
import type { OpenStore } from './open-store.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

export function describeTelemetryStoreContract(name: string, open: OpenStore<TelemetryStore>): void {
  describe(`TelemetryStore contract: ${name}`, () => {
    let store: TelemetryStore;
    let close: () => Promise<void>;
    /** A recent whole hour, so the times are plausible for any retention policy and align with coarse buckets. */
    let t0: number;
    /** Ids unique to this test. */
    let id: (label: string) => string;

    beforeEach(async () => {
      ({ store, close } = await open());
      t0 = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 24 * HOUR_MS;
      const run = randomUUID().slice(0, 8);
      id = (label) => `${label}-${run}`;
    });

    afterEach(async () => {
      await close();
    });

    function point(deviceId: string, offsetMs: number, metrics: Record<string, number>, seq = offsetMs / 1000): TelemetryPoint {
      return { deviceId, ts: t0 + offsetMs, seq, metrics };
    }

    function rollup(entityId: string, metric: string, minute: number, values: Partial<Rollup> = {}): Rollup {
      return {
        kind: 'site',
        entityId,
        metric,
        bucketStartMs: t0 + minute * MINUTE_MS,
        min: 1,
        max: 1,
        mean: 1,
        last: 1,
        count: 1,
        devicesReporting: 1,
        devicesTotal: 1,
        ...values,
      };
    }

    describe('raw telemetry', () => {
      it('reads back written points in time order with their seq and metrics', async () => {
        const device = id('dev');
        const points = [
          point(device, 3000, { powerW: -3200, socPct: 62.5 }),
          point(device, 1000, { powerW: 1500.25, socPct: 61 }),
          point(device, 2000, { powerW: 0, socPct: 0.1, tempC: -12.75 }),
        ];
        const result = await store.writeTelemetry(points);
        expect(result.inserted).toEqual([true, true, true]);

        const read = await store.queryTelemetry({ deviceId: device, fromMs: t0, toMs: t0 + HOUR_MS, limit: 100 });
        expect(read).toEqual([points[1], points[2], points[0]]);
      });

      it('keeps values exactly, including large, small and negative numbers', async () => {
        const device = id('dev');
        const metrics = { energyWh: 999_999.999, tempC: -39.5, voltageV: 230.1, tiny: 1e-9, big: 1e12, zero: 0 };
        await store.writeTelemetry([point(device, 0, metrics)]);
        const [read] = await store.queryTelemetry({ deviceId: device, fromMs: t0, toMs: t0 + 1, limit: 1 });
        expect(read?.metrics).toEqual(metrics);
      });

      it('is idempotent on (device, ts): a second write reports inserted=false and does not change the stored sample', async () => {
        const device = id('dev');
        const first = await store.writeTelemetry([point(device, 1000, { powerW: 100 }, 7)]);
        expect(first.inserted).toEqual([true]);

        const second = await store.writeTelemetry([point(device, 1000, { powerW: 999, socPct: 50 }, 8)]);
        expect(second.inserted).toEqual([false]);

        const read = await store.queryTelemetry({ deviceId: device, fromMs: t0, toMs: t0 + HOUR_MS, limit: 10 });
        expect(read).toEqual([point(device, 1000, { powerW: 100 }, 7)]);
      });

      it('reports each point of a mixed batch: new, redelivered, repeated within the batch, other device at the same ts', async () => {
        const a = id('a');
        const b = id('b');
        await store.writeTelemetry([point(a, 1000, { powerW: 1 }), point(a, 2000, { powerW: 2 })]);

        const result = await store.writeTelemetry([
          point(a, 2000, { powerW: -2 }), // redelivery
          point(a, 3000, { powerW: 3 }), // new
          point(b, 2000, { powerW: 20 }), // same ts, other device: new
          point(a, 3000, { powerW: -3 }), // repeated within this batch
          point(a, 1000, { powerW: -1 }), // redelivery
          point(a, 4000, { powerW: 4 }), // new
        ]);
        expect(result.inserted).toEqual([false, true, true, false, false, true]);

        const readA = await store.queryTelemetry({ deviceId: a, fromMs: t0, toMs: t0 + HOUR_MS, limit: 10 });
        expect(readA.map((p) => [p.ts - t0, p.metrics.powerW])).toEqual([
          [1000, 1],
          [2000, 2],
          [3000, 3],
          [4000, 4],
        ]);
        const readB = await store.queryTelemetry({ deviceId: b, fromMs: t0, toMs: t0 + HOUR_MS, limit: 10 });
        expect(readB.map((p) => [p.ts - t0, p.metrics.powerW])).toEqual([[2000, 20]]);
      });

      it('resolves an empty write with an empty result', async () => {
        await expect(store.writeTelemetry([])).resolves.toEqual({ inserted: [] });
      });

      it('stores a large batch over many devices in one call', async () => {
        const devices = Array.from({ length: 50 }, (_, i) => id(`fleet${i}`));
        const points: TelemetryPoint[] = [];
        for (let second = 0; second < 40; second++) {
          for (const device of devices) points.push(point(device, second * 1000, { powerW: second, socPct: 50 }));
        }
        const result = await store.writeTelemetry(points);
        expect(result.inserted).toHaveLength(2000);
        expect(result.inserted.every(Boolean)).toBe(true);

        const again = await store.writeTelemetry(points.slice(0, 500));
        expect(again.inserted.some(Boolean)).toBe(false);

        const read = await store.queryTelemetry({ deviceId: devices[17]!, fromMs: t0, toMs: t0 + HOUR_MS, limit: 1000 });
        expect(read.map((p) => p.metrics.powerW)).toEqual(Array.from({ length: 40 }, (_, i) => i));
      });

      it('treats fromMs as inclusive and toMs as exclusive', async () => {
        const device = id('dev');
        await store.writeTelemetry([0, 1000, 2000, 3000].map((ms) => point(device, ms, { powerW: ms })));
        const read = await store.queryTelemetry({ deviceId: device, fromMs: t0 + 1000, toMs: t0 + 3000, limit: 10 });
        expect(read.map((p) => p.ts - t0)).toEqual([1000, 2000]);
        expect(await store.queryTelemetry({ deviceId: device, fromMs: t0 + 1000, toMs: t0 + 1000, limit: 10 })).toEqual([]);
      });

      it('returns only the requested metrics and skips points that have none of them', async () => {
        const device = id('dev');
        await store.writeTelemetry([
          point(device, 0, { powerW: 1, socPct: 10, tempC: 20 }),
          point(device, 1000, { tempC: 21 }),
          point(device, 2000, { socPct: 12 }),
          point(device, 3000, { powerW: 4, tempC: 23 }),
        ]);
        const read = await store.queryTelemetry({ deviceId: device, fromMs: t0, toMs: t0 + HOUR_MS, metrics: ['powerW', 'socPct'], limit: 10 });
        expect(read.map((p) => [p.ts - t0, p.metrics])).toEqual([
          [0, { powerW: 1, socPct: 10 }],
          [2000, { socPct: 12 }],
          [3000, { powerW: 4 }],
        ]);
        const none = await store.queryTelemetry({ deviceId: device, fromMs: t0, toMs: t0 + HOUR_MS, metrics: ['loadW'], limit: 10 });
        expect(none).toEqual([]);
      });

      it('returns at most limit points, the earliest ones, also with a metric filter', async () => {
        const device = id('dev');
        await store.writeTelemetry(
          Array.from({ length: 10 }, (_, i) => point(device, i * 1000, i % 2 === 0 ? { powerW: i } : { socPct: i })),
        );
        const read = await store.queryTelemetry({ deviceId: device, fromMs: t0, toMs: t0 + HOUR_MS, limit: 3 });
        expect(read.map((p) => p.ts - t0)).toEqual([0, 1000, 2000]);
        const filtered = await store.queryTelemetry({ deviceId: device, fromMs: t0, toMs: t0 + HOUR_MS, metrics: ['socPct'], limit: 3 });
        expect(filtered.map((p) => [p.ts - t0, p.metrics.socPct])).toEqual([
          [1000, 1],
          [3000, 3],
          [5000, 5],
        ]);
      });

      it('refuses a batch with a ts or seq that is not a safe integer with invalid, and writes none of it', async () => {
        const device = id('dev');
        for (const bad of [point(device, 2000, { powerW: 2 }, 1e20), point(device, 2000.5, { powerW: 2 }), { ...point(device, 0, { powerW: 2 }), ts: 1e20 }]) {
          const error = await store.writeTelemetry([point(device, 1000, { powerW: 1 }), bad]).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(StoreError);
          expect((error as StoreError).code).toBe('invalid');
        }
        expect(await store.queryTelemetry({ deviceId: device, fromMs: 0, toMs: Number.MAX_SAFE_INTEGER, limit: 10 })).toEqual([]);
      });

      it('returns nothing for a device without data', async () => {
        await store.writeTelemetry([point(id('dev'), 0, { powerW: 1 })]);
        expect(await store.queryTelemetry({ deviceId: id('other'), fromMs: t0, toMs: t0 + HOUR_MS, limit: 10 })).toEqual([]);
      });
    });

    describe('rollups', () => {
      it('reads 1-minute rollups back in (metric, time) order', async () => {
        const site = id('site');
        const rows = [
          rollup(site, 'socPct', 1, { mean: 51 }),
          rollup(site, 'powerW', 1, { mean: 1100 }),
          rollup(site, 'socPct', 0, { mean: 50 }),
          rollup(site, 'powerW', 0, { min: -5, max: 2000.5, mean: 1000, last: 7, count: 60, devicesReporting: 3, devicesTotal: 4 }),
        ];
        await store.writeRollups(rows);
        const read = await store.queryRollups({ kind: 'site', entityId: site, fromMs: t0, toMs: t0 + HOUR_MS, bucketMs: MINUTE_MS });
        expect(read).toEqual([rows[3], rows[1], rows[2], rows[0]]);
      });

      it('upserts: a later write of the same (kind, entity, metric, bucket) replaces the earlier one', async () => {
        const site = id('site');
        await store.writeRollups([rollup(site, 'powerW', 0, { mean: 1, count: 10 })]);
        const replacement = rollup(site, 'powerW', 0, { min: -1, max: 9, mean: 4, last: 8, count: 12, devicesReporting: 2, devicesTotal: 3 });
        await store.writeRollups([replacement]);
        const read = await store.queryRollups({ kind: 'site', entityId: site, fromMs: t0, toMs: t0 + HOUR_MS, bucketMs: MINUTE_MS });
        expect(read).toEqual([replacement]);
      });

      it('keeps kinds and entities apart and honours the time range (from inclusive, to exclusive)', async () => {
        const site = id('site');
        await store.writeRollups([
          rollup(site, 'powerW', 0),
          rollup(site, 'powerW', 1),
          rollup(site, 'powerW', 2),
          { ...rollup(site, 'powerW', 1), kind: 'region' },
          rollup(id('other'), 'powerW', 1),
        ]);
        const read = await store.queryRollups({
          kind: 'site',
          entityId: site,
          fromMs: t0 + MINUTE_MS,
          toMs: t0 + 2 * MINUTE_MS,
          bucketMs: MINUTE_MS,
        });
        expect(read.map((r) => [r.kind, r.entityId, r.bucketStartMs - t0])).toEqual([['site', site, MINUTE_MS]]);
      });

      it('filters by metric', async () => {
        const site = id('site');
        await store.writeRollups([rollup(site, 'powerW', 0), rollup(site, 'socPct', 0), rollup(site, 'tempC', 0)]);
        const read = await store.queryRollups({
          kind: 'site',
          entityId: site,
          fromMs: t0,
          toMs: t0 + HOUR_MS,
          metrics: ['tempC', 'powerW'],
          bucketMs: MINUTE_MS,
        });
        expect(read.map((r) => r.metric)).toEqual(['powerW', 'tempC']);
        const merged = await store.queryRollups({
          kind: 'site',
          entityId: site,
          fromMs: t0,
          toMs: t0 + HOUR_MS,
          metrics: ['socPct'],
          bucketMs: HOUR_MS,
        });
        expect(merged.map((r) => r.metric)).toEqual(['socPct']);
      });

      it('merges 1-minute rows into coarser buckets aligned to multiples of bucketMs', async () => {
        const site = id('site');
        const bucketMs = 15 * MINUTE_MS;
        await store.writeRollups([
          // First 15-minute bucket: minutes 0, 5 and 14, written out of order.
          rollup(site, 'powerW', 14, { min: 0, max: 30, mean: 20, last: 25, count: 2, devicesReporting: 2, devicesTotal: 5 }),
          rollup(site, 'powerW', 0, { min: -10, max: 50, mean: 10, last: 12, count: 1, devicesReporting: 3, devicesTotal: 4 }),
          rollup(site, 'powerW', 5, { min: 5, max: 40, mean: 2, last: 3, count: 5, devicesReporting: 1, devicesTotal: 4 }),
          // Second bucket: one minute.
          rollup(site, 'powerW', 15, { min: 7, max: 8, mean: 7.5, last: 8, count: 4, devicesReporting: 1, devicesTotal: 5 }),
          // Another metric in the first bucket.
          rollup(site, 'socPct', 3, { min: 40, max: 60, mean: 50, last: 55, count: 3, devicesReporting: 2, devicesTotal: 2 }),
        ]);
        const read = await store.queryRollups({ kind: 'site', entityId: site, fromMs: t0, toMs: t0 + HOUR_MS, bucketMs });
        const expected: Rollup[] = [
          {
            kind: 'site',
            entityId: site,
            metric: 'powerW',
            bucketStartMs: t0,
            min: -10,
            max: 50,
            // (10·1 + 2·5 + 20·2) / 8
            mean: 7.5,
            last: 25,
            count: 8,
            devicesReporting: 3,
            devicesTotal: 5,
          },
          {
            kind: 'site',
            entityId: site,
            metric: 'powerW',
            bucketStartMs: t0 + bucketMs,
            min: 7,
            max: 8,
            mean: 7.5,
            last: 8,
            count: 4,
            devicesReporting: 1,
            devicesTotal: 5,
          },
          {
            kind: 'site',
            entityId: site,
            metric: 'socPct',
            bucketStartMs: t0,
            min: 40,
            max: 60,
            mean: 50,
            last: 55,
            count: 3,
            devicesReporting: 2,
            devicesTotal: 2,
          },
        ];
        expect(read).toEqual(expected);
      });

      it('aligns coarse buckets to the epoch, not to fromMs, and merges only rows inside the range', async () => {
        const site = id('site');
        // Minutes 50..69 after t0 (a whole hour) straddle two hour buckets.
        await store.writeRollups(
          Array.from({ length: 20 }, (_, i) => rollup(site, 'powerW', 50 + i, { min: i, max: i, mean: i, last: i, count: 1 })),
        );
        const read = await store.queryRollups({
          kind: 'site',
          entityId: site,
          fromMs: t0 + 55 * MINUTE_MS,
          toMs: t0 + 65 * MINUTE_MS,
          bucketMs: HOUR_MS,
        });
        // Minutes 55..59 (values 5..9) and 60..64 (values 10..14).
        expect(read.map((r) => [r.bucketStartMs - t0, r.min, r.max, r.mean, r.last, r.count])).toEqual([
          [0, 5, 9, 7, 9, 5],
          [HOUR_MS, 10, 14, 12, 14, 5],
        ]);
      });

      it('answers the same rollups as columns, per metric in metric order, at one minute and merged', async () => {
        const site = id('site');
        const rows: Rollup[] = [];
        for (let minute = 0; minute < 12; minute++) {
          rows.push(rollup(site, 'powerW', minute, { min: -(minute + 1), max: 1000.25 + minute, mean: 0.1 + minute / 3, last: minute * 7, count: 6, devicesReporting: minute % 3, devicesTotal: 3 }));
          rows.push(rollup(site, 'socPct', minute, { mean: 50 + minute }));
        }
        await store.writeRollups(rows);
        for (const [bucketMs, metrics] of [[MINUTE_MS, undefined], [5 * MINUTE_MS, undefined], [MINUTE_MS, ['socPct']]] as const) {
          const query = { kind: 'site' as const, entityId: site, fromMs: t0 + MINUTE_MS, toMs: t0 + 11 * MINUTE_MS, bucketMs, ...(metrics ? { metrics: [...metrics] } : {}) };
          const columns = await store.queryRollupColumns(query);
          expect(columns).toEqual(rollupsToColumns(await store.queryRollups(query)));
          expect(columns.map((c) => c.metric)).toEqual(metrics ? ['socPct'] : ['powerW', 'socPct']);
        }
        const [power] = await store.queryRollupColumns({ kind: 'site', entityId: site, fromMs: t0, toMs: t0 + 2 * MINUTE_MS, bucketMs: MINUTE_MS });
        expect(power).toEqual({
          metric: 'powerW',
          bucketStartMs: [t0, t0 + MINUTE_MS],
          min: [-1, -2],
          max: [1000.25, 1001.25],
          mean: [0.1, 0.1 + 1 / 3],
          last: [0, 7],
          count: [6, 6],
          devicesReporting: [0, 1],
          devicesTotal: [3, 3],
        });
        expect(await store.queryRollupColumns({ kind: 'site', entityId: site, fromMs: t0, toMs: t0, bucketMs: MINUTE_MS })).toEqual([]);
        expect(await store.queryRollupColumns({ kind: 'site', entityId: id('nobody'), fromMs: t0, toMs: t0 + HOUR_MS, bucketMs: MINUTE_MS })).toEqual([]);
        const error = await store.queryRollupColumns({ kind: 'site', entityId: site, fromMs: t0, toMs: t0 + HOUR_MS, bucketMs: 90_000 }).catch((e: unknown) => e);
        expect((error as StoreError).code).toBe('invalid');
      });

      it('rejects a bucket width that is not a positive multiple of one minute', async () => {
        const query = { kind: 'fleet' as const, entityId: 'fleet', fromMs: t0, toMs: t0 + HOUR_MS };
        for (const bucketMs of [90_000, 0, -MINUTE_MS, 1000]) {
          const error = await store.queryRollups({ ...query, bucketMs }).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(StoreError);
          expect((error as StoreError).code).toBe('invalid');
        }
      });
    });

    describe('lifecycle', () => {
      it('reports healthy while open, and close is idempotent', async () => {
        await expect(store.checkHealth()).resolves.toBeUndefined();
        await store.close();
        await store.close();
      });
    });
  });
}
