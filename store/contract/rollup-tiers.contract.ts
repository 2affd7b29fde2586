/**
 * Contract of rollup tiers and retention. Through the port only: a coarse
 * answer must equal the merge of the written minutes whatever tier it was
 * read from, and pruning must remove exactly what is older than each
 * retention period.
 *
 * Two entry points, so that each store runs what it implements:
 * - describeRollupTiersContract: every case, for stores that keep coarser
 *   rollups than the 1-minute rows they are given and prune old data on the
 *   caller's schedule (the SQLite store).
 * - describeRollupMergeContract: the merge cases only (coarse buckets from 5
 *   minutes to a day, after rewrites and out-of-order writes), for stores
 *   whose server deletes old data by its own retention policy, which no
 *   call of the port triggers (InfluxDB: no pruneTelemetry or pruneRollups).
 *   The three pruning cases are SQLite's alone.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EntityKind, Rollup, TelemetryPoint, TelemetryStore } from '../types.ts';
import type { OpenStore } from './open-store.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export interface PrunableTelemetryStore extends TelemetryStore {
  /** Deletes raw samples older than the telemetry retention; resolves to how many. */
  pruneTelemetry(nowMs: number): Promise<number>;
  /** Deletes rollups older than each tier's retention. */
  pruneRollups(nowMs: number): Promise<unknown>;
}

/** Retention the opener configured. Rollup retention is applied in whole hours (rounded down). */
export interface ContractRetention {
  telemetryMs: number;
  /** 1-minute rows; at most a few hours, so the test stays small. */
  rollups1mMs: number;
  /** Coarse (15-minute and longer) buckets; longer than rollups1mMs and a whole number of hours. */
  coarseMs: number;
}

/** Reference merge, written independently of any store: what a coarse bucket must hold. */
function mergeReference(rows: readonly Rollup[], bucketMs: number): Rollup[] {
  const groups = new Map<string, Rollup[]>();
  for (const r of rows) {
    const start = Math.floor(r.bucketStartMs / bucketMs) * bucketMs;
    const key = `${r.metric}|${start}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const merged = [...groups.values()].map((group): Rollup => {
    const count = group.reduce((sum, r) => sum + r.count, 0);
    const latest = group.reduce((a, b) => (b.bucketStartMs > a.bucketStartMs ? b : a));
    return {
      ...group[0]!,
      bucketStartMs: Math.floor(group[0]!.bucketStartMs / bucketMs) * bucketMs,
      min: Math.min(...group.map((r) => r.min)),
      max: Math.max(...group.map((r) => r.max)),
      mean: count > 0 ? group.reduce((sum, r) => sum + r.mean * r.count, 0) / count : group.reduce((sum, r) => sum + r.mean, 0) / group.length,
      last: latest.last,
      count,
      devicesReporting: Math.max(...group.map((r) => r.devicesReporting)),
      devicesTotal: Math.max(...group.map((r) => r.devicesTotal)),
    };
  });
  return merged.sort((a, b) => (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : a.bucketStartMs - b.bucketStartMs));
}

function expectSameRollups(actual: readonly Rollup[], expected: readonly Rollup[]): void {
  expect(actual.map((r) => [r.metric, r.bucketStartMs])).toEqual(expected.map((r) => [r.metric, r.bucketStartMs]));
  actual.forEach((r, i) => {
    const e = expected[i]!;
    expect({ ...r, mean: 0 }).toEqual({ ...e, mean: 0 });
    expect(r.mean).toBeCloseTo(e.mean, 6);
  });
}

/** Every case: merging and retention. */
export function describeRollupTiersContract(name: string, open: OpenStore<PrunableTelemetryStore>, retention: ContractRetention): void {
  describeRollupCases(`rollup tiers and retention contract: ${name}`, open, retention);
}

/** The merge cases only, for a store whose server applies its own retention (see the file comment). */
export function describeRollupMergeContract(name: string, open: OpenStore<TelemetryStore>): void {
  describeRollupCases(`rollup tiers contract, merging only (retention is the server's): ${name}`, open, undefined);
}

function describeRollupCases(title: string, open: OpenStore<TelemetryStore>, retention: ContractRetention | undefined): void {
  describe(title, () => {
    // Pruning is called only when a retention is given, which describeRollupTiersContract's opener guarantees.
    let store: PrunableTelemetryStore;
    let close: () => Promise<void>;
    /** A whole day, a few days back, so every bucket width used here aligns with it. */
    let t0: number;
    let entity: string;

    beforeEach(async () => {
      const opened = await open();
      store = opened.store as PrunableTelemetryStore;
      close = () => opened.close();
      t0 = Math.floor(Date.now() / DAY_MS) * DAY_MS - 3 * DAY_MS;
      entity = `site-${randomUUID().slice(0, 8)}`;
    });

    afterEach(async () => {
      await close();
    });

    /** Deterministic, varied 1-minute rows: some with zero counts, coverage changing. */
    function minutes(kind: EntityKind, fromMinute: number, n: number, metrics: readonly string[], salt = 0): Rollup[] {
      const rows: Rollup[] = [];
      for (let m = fromMinute; m < fromMinute + n; m++) {
        for (const [k, metric] of metrics.entries()) {
          const x = ((m * 37 + k * 11 + salt * 7) % 101) - 50;
          rows.push({
            kind,
            entityId: entity,
            metric,
            bucketStartMs: t0 + m * MINUTE_MS,
            min: x - 5,
            max: x + 7.25,
            mean: x + 0.5,
            last: x * 2,
            count: (m + k + salt) % 9 === 0 ? 0 : ((m + salt) % 6) + 1,
            devicesReporting: (m % 4) + 1,
            devicesTotal: 5 + (m % 3),
          });
        }
      }
      return rows;
    }

    const query = (fromMs: number, toMs: number, bucketMs: number, metrics?: string[]) =>
      store.queryRollups({ kind: 'site', entityId: entity, fromMs, toMs, bucketMs, ...(metrics ? { metrics } : {}) });

    it('answers 5-minute, 15-minute, hourly and daily buckets as the merge of the written minutes, for aligned and unaligned ranges', async () => {
      // Three hours and a bit, written in uneven batches, one minute missing.
      const rows = minutes('site', 0, 200, ['powerW', 'socPct']).filter((r) => r.bucketStartMs !== t0 + 42 * MINUTE_MS);
      for (let i = 0; i < rows.length; i += 97) await store.writeRollups(rows.slice(i, i + 97));

      const ranges: Array<[number, number]> = [
        [t0, t0 + 4 * HOUR_MS],
        [t0 + 7 * MINUTE_MS, t0 + 173 * MINUTE_MS],
        [t0 + 16 * MINUTE_MS, t0 + 29 * MINUTE_MS],
        [t0 + 61 * MINUTE_MS, t0 + 62 * MINUTE_MS],
      ];
      for (const bucketMs of [5 * MINUTE_MS, 15 * MINUTE_MS, 30 * MINUTE_MS, HOUR_MS, 2 * HOUR_MS, DAY_MS]) {
        for (const [fromMs, toMs] of ranges) {
          const inRange = rows.filter((r) => r.bucketStartMs >= fromMs && r.bucketStartMs < toMs);
          expectSameRollups(await query(fromMs, toMs, bucketMs), mergeReference(inRange, bucketMs));
        }
      }
      const socOnly = await query(t0, t0 + 4 * HOUR_MS, HOUR_MS, ['socPct']);
      expectSameRollups(socOnly, mergeReference(rows.filter((r) => r.metric === 'socPct'), HOUR_MS));
    });

    it('keeps coarse buckets right when minutes are rewritten, arrive out of order or arrive late', async () => {
      const first = minutes('site', 0, 90, ['powerW']);
      await store.writeRollups(first.slice(30));
      await store.writeRollups(first.slice(0, 30).reverse());
      // Rewrites replace, they do not add up.
      const rewritten = minutes('site', 10, 25, ['powerW'], 3);
      await store.writeRollups(rewritten);
      const expected = [...first.filter((r) => r.bucketStartMs < t0 + 10 * MINUTE_MS || r.bucketStartMs >= t0 + 35 * MINUTE_MS), ...rewritten];
      for (const bucketMs of [15 * MINUTE_MS, HOUR_MS]) {
        expectSameRollups(await query(t0, t0 + 2 * HOUR_MS, bucketMs), mergeReference(expected, bucketMs));
      }
    });

    // Retention: only for stores that prune on the caller's schedule.
    if (retention !== undefined) {
      it('prunes each tier after its retention and still answers old ranges from the coarser tiers', async () => {
        // Minutes over the last two days before now; now is t0 + 2 days.
        const nowMs = t0 + 2 * DAY_MS;
        const span = Math.floor(Math.min(2 * DAY_MS, retention.coarseMs + 6 * HOUR_MS) / MINUTE_MS);
        const firstMinute = 2 * 24 * 60 - span;
        const rows = minutes('site', firstMinute, span, ['powerW']);
        for (let i = 0; i < rows.length; i += 1000) await store.writeRollups(rows.slice(i, i + 1000));
        const fromMs = t0 + firstMinute * MINUTE_MS;
        const before15 = await query(fromMs, nowMs, 15 * MINUTE_MS);
        const beforeHour = await query(fromMs, nowMs, HOUR_MS);

        await store.pruneRollups(nowMs);

        const minuteCutoff = Math.floor((nowMs - retention.rollups1mMs) / HOUR_MS) * HOUR_MS;
        const coarseCutoff = Math.floor((nowMs - retention.coarseMs) / HOUR_MS) * HOUR_MS;
        // 1-minute rows: exactly those from the cutoff on are left.
        const minuteRows = await query(fromMs, nowMs, MINUTE_MS);
        expect(minuteRows.map((r) => r.bucketStartMs)).toEqual(rows.filter((r) => r.bucketStartMs >= minuteCutoff).map((r) => r.bucketStartMs));
        // Coarse answers newer than the coarse cutoff are unchanged.
        const keep = (r: Rollup) => r.bucketStartMs >= coarseCutoff;
        expectSameRollups((await query(fromMs, nowMs, 15 * MINUTE_MS)).filter(keep), before15.filter(keep));
        expectSameRollups((await query(fromMs, nowMs, HOUR_MS)).filter(keep), beforeHour.filter(keep));
        // A range that starts mid-bucket where minutes are gone gets the whole bucket rather than nothing.
        const oldMidBucket = minuteCutoff - 2 * HOUR_MS + 7 * MINUTE_MS;
        if (oldMidBucket >= coarseCutoff && oldMidBucket >= fromMs) {
          const [firstBucket] = await query(oldMidBucket, nowMs, 15 * MINUTE_MS);
          expect(firstBucket?.bucketStartMs).toBe(oldMidBucket - 7 * MINUTE_MS);
        }
        // Nothing is left of a tier before its own cutoff.
        if (coarseCutoff > fromMs) {
          expect(await query(fromMs, coarseCutoff, 15 * MINUTE_MS)).toEqual([]);
        }
        // Pruning again removes nothing more and changes no answer.
        await store.pruneRollups(nowMs);
        expect(await query(fromMs, nowMs, MINUTE_MS)).toEqual(minuteRows);
      });

      it('merges a minute that arrives after its neighbours were pruned into its coarse bucket', async () => {
        const nowMs = t0 + 2 * DAY_MS;
        const minuteCutoff = Math.floor((nowMs - retention.rollups1mMs) / HOUR_MS) * HOUR_MS;
        // An hour just before the 1-minute cutoff, inside the coarse retention.
        const hourStart = minuteCutoff - HOUR_MS;
        const startMinute = (hourStart - t0) / MINUTE_MS;
        const rows = minutes('site', startMinute, 50, ['powerW']);
        await store.writeRollups(rows);
        await store.pruneRollups(nowMs);
        expect(await query(hourStart, hourStart + HOUR_MS, MINUTE_MS)).toEqual([]);

        const late = minutes('site', startMinute + 55, 1, ['powerW'], 5);
        await store.writeRollups(late);
        expectSameRollups(await query(hourStart, hourStart + HOUR_MS, HOUR_MS), mergeReference([...rows, ...late], HOUR_MS));
      });

      it('prunes raw telemetry older than its retention and keeps the rest', async () => {
        const device = `dev-${randomUUID().slice(0, 8)}`;
        const nowMs = t0 + 2 * DAY_MS;
        const cutoffMs = nowMs - retention.telemetryMs;
        const points: TelemetryPoint[] = [-3, -2, -1, 0, 1, 2].map((i) => ({ deviceId: device, ts: cutoffMs + i * 1000, seq: i + 10, metrics: { powerW: i } }));
        await store.writeTelemetry(points);
        expect(await store.pruneTelemetry(nowMs)).toBeGreaterThanOrEqual(3);
        const left = await store.queryTelemetry({ deviceId: device, fromMs: 0, toMs: nowMs + 1, limit: 100 });
        expect(left).toEqual(points.filter((p) => p.ts >= cutoffMs));
      });
    }
  });
}
