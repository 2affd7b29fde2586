/**
 * 1-minute rollups computed incrementally from committed samples, and the
 * site/region/fleet aggregates derived from them when a minute closes.
 *
 * A minute closes `latenessMs` after it ends. Samples that arrive for a minute
 * that has already closed (a device flushing its offline buffer) are not
 * accumulated: they are listed as late, and the caller recomputes those
 * device minutes from the raw telemetry in the store, which is complete and
 * correct whatever happened before (restart, redelivery). A late device is
 * left out of the aggregate of a minute it did not report in on time, and the
 * aggregate's coverage says so.
 *
 * The minute in which the process started may hold samples committed before
 * the start, which memory does not have: it is accumulated as usual (to know
 * who reported), but when it closes it is handed back for repair: the caller
 * recomputes from the store the device rollups of the devices that may have
 * such samples (`mayHaveEarlierSamples`), takes the others as accumulated,
 * and then asks `aggregate` for the aggregates. Recomputing only where it is
 * needed matters: after a restart under load, the start minute holds every
 * device of the fleet, and one store query per device would stall ingest.
 */
import type { DeviceCounts, Rollup } from '../store/types.ts';
import { MetricsSum, SUMMED_METRICS } from './aggregate-metrics.ts';
import type { CommittedSample, DeviceRef } from './types.ts';

export const BUCKET_MS = 60_000;

export function bucketStartOf(ts: number): number {
  return Math.floor(ts / BUCKET_MS) * BUCKET_MS;
}

interface Stat {
  min: number;
  max: number;
  sum: number;
  count: number;
  last: number;
  lastTs: number;
}

interface DeviceBucket {
  device: DeviceRef;
  bucketStartMs: number;
  stats: Map<string, Stat>;
}

export interface LateBucket {
  deviceId: string;
  bucketStartMs: number;
}

/** A closed minute whose aggregates need device rollups recomputed from the store first. */
export interface RepairBucket {
  bucketStartMs: number;
  /** Devices to recompute from the store: they may have samples in this minute from before the start. */
  devices: DeviceRef[];
  /** Device minutes accumulated in memory that are complete as they are (no samples before the start). */
  known: DeviceMinute[];
}

export interface ClosedBuckets {
  rollups: Rollup[];
  late: LateBucket[];
  repair: RepairBucket[];
}

/** The rollups of one device in one minute, as input to `aggregate`. */
export interface DeviceMinute {
  device: DeviceRef;
  rollups: readonly Rollup[];
}

export interface RollupAccumulatorOptions {
  startMs: number;
  latenessMs: number;
  regionOf(siteId: string): string | undefined;
  deviceCounts(): DeviceCounts;
  /**
   * Whether the store may hold samples of this device in this minute that
   * were committed before the process started (e.g. its twin's latest
   * sample at start is not older than the minute). Default: always.
   */
  mayHaveEarlierSamples?(deviceId: string, bucketStartMs: number): boolean;
}

export class RollupAccumulator {
  /** Open buckets keyed by `${bucketStartMs}/${deviceId}`. */
  private readonly open = new Map<string, DeviceBucket>();
  private late = new Map<string, LateBucket>();
  /** Every bucket that ends at or before this instant is closed. */
  private closedThroughMs: number;
  /** Buckets that start before this instant may hold samples committed before the process started. */
  private readonly repairBeforeMs: number;

  constructor(private readonly options: RollupAccumulatorOptions) {
    this.closedThroughMs = bucketStartOf(options.startMs);
    this.repairBeforeMs = bucketStartOf(options.startMs) + BUCKET_MS;
  }

  /** Marks device minutes to recompute from the store (e.g. minutes in flight when the process last stopped). */
  markLate(deviceId: string, bucketStartMs: number): void {
    this.late.set(`${bucketStartMs}/${deviceId}`, { deviceId, bucketStartMs });
  }

  add(sample: CommittedSample): void {
    const bucketStartMs = bucketStartOf(sample.ts);
    const key = `${bucketStartMs}/${sample.device.id}`;
    if (bucketStartMs + BUCKET_MS <= this.closedThroughMs) {
      this.late.set(key, { deviceId: sample.device.id, bucketStartMs });
      return;
    }
    let bucket = this.open.get(key);
    if (!bucket) {
      bucket = { device: sample.device, bucketStartMs, stats: new Map() };
      this.open.set(key, bucket);
    }
    addSample(bucket, sample);
  }

  /** Closes every bucket that ended `latenessMs` before `nowMs` (all of them for Infinity). */
  close(nowMs: number): ClosedBuckets {
    const closeBeforeMs = nowMs === Infinity ? Infinity : bucketStartOf(nowMs - this.options.latenessMs);
    const byBucket = new Map<number, DeviceBucket[]>();
    for (const [key, bucket] of this.open) {
      if (bucket.bucketStartMs + BUCKET_MS > closeBeforeMs) continue;
      this.open.delete(key);
      let list = byBucket.get(bucket.bucketStartMs);
      if (!list) byBucket.set(bucket.bucketStartMs, (list = []));
      list.push(bucket);
    }
    if (closeBeforeMs !== Infinity && closeBeforeMs > this.closedThroughMs) this.closedThroughMs = closeBeforeMs;

    const rollups: Rollup[] = [];
    const repair: RepairBucket[] = [];
    for (const [bucketStartMs, buckets] of byBucket) {
      if (bucketStartMs < this.repairBeforeMs) {
        const mayHaveEarlier = this.options.mayHaveEarlierSamples ?? (() => true);
        const devices: DeviceRef[] = [];
        const known: DeviceMinute[] = [];
        for (const bucket of buckets) {
          if (mayHaveEarlier(bucket.device.id, bucketStartMs)) devices.push(bucket.device);
          else known.push({ device: bucket.device, rollups: deviceRollups(bucket) });
        }
        repair.push({ bucketStartMs, devices, known });
        continue;
      }
      const minutes = buckets.map((bucket) => ({ device: bucket.device, rollups: deviceRollups(bucket) }));
      for (const minute of minutes) rollups.push(...minute.rollups);
      rollups.push(...this.aggregate(bucketStartMs, minutes));
    }
    const late = [...this.late.values()];
    this.late = new Map();
    return { rollups, late, repair };
  }

  /** Site, region and fleet rollups of one minute from the device rollups of that minute. */
  aggregate(bucketStartMs: number, minutes: readonly DeviceMinute[]): Rollup[] {
    interface Entity {
      kind: 'site' | 'region' | 'fleet';
      id: string;
      min: MetricsSum;
      max: MetricsSum;
      mean: MetricsSum;
      last: MetricsSum;
    }
    const entities = new Map<string, Entity>();
    const entityOf = (kind: Entity['kind'], id: string): Entity => {
      const key = `${kind}/${id}`;
      let entity = entities.get(key);
      if (!entity) {
        entity = { kind, id, min: new MetricsSum(), max: new MetricsSum(), mean: new MetricsSum(), last: new MetricsSum() };
        entities.set(key, entity);
      }
      return entity;
    };
    for (const { device, rollups } of minutes) {
      const min: Record<string, number> = {};
      const max: Record<string, number> = {};
      const mean: Record<string, number> = {};
      const last: Record<string, number> = {};
      for (const row of rollups) {
        min[row.metric] = row.min;
        max[row.metric] = row.max;
        mean[row.metric] = row.mean;
        last[row.metric] = row.last;
      }
      const region = this.options.regionOf(device.siteId);
      const targets = [entityOf('site', device.siteId), entityOf('fleet', 'fleet')];
      if (region !== undefined) targets.push(entityOf('region', region));
      for (const entity of targets) {
        entity.min.add(device.id, device.type, min);
        entity.max.add(device.id, device.type, max);
        entity.mean.add(device.id, device.type, mean);
        entity.last.add(device.id, device.type, last);
      }
    }
    const counts = this.options.deviceCounts();
    const totalOf = (entity: Entity): number =>
      entity.kind === 'fleet' ? counts.fleet : ((entity.kind === 'site' ? counts.bySite : counts.byRegion).get(entity.id) ?? 0);

    const rows: Rollup[] = [];
    for (const entity of entities.values()) {
      const devicesReporting = entity.mean.devices.size;
      const devicesTotal = Math.max(totalOf(entity), devicesReporting);
      const base = { kind: entity.kind, entityId: entity.id, bucketStartMs, count: devicesReporting, devicesReporting, devicesTotal };
      for (const metric of SUMMED_METRICS) {
        rows.push({
          ...base,
          metric,
          min: entity.min.sums[metric],
          max: entity.max.sums[metric],
          mean: entity.mean.sums[metric],
          last: entity.last.sums[metric],
        });
      }
      const socPct = entity.mean.socPct();
      if (socPct !== null) rows.push({ ...base, metric: 'socPct', min: socPct, max: socPct, mean: socPct, last: socPct });
    }
    return rows;
  }
}

function addSample(bucket: DeviceBucket, sample: CommittedSample): void {
  for (const metric in sample.metrics) {
    const value = sample.metrics[metric]!;
    const stat = bucket.stats.get(metric);
    if (!stat) {
      bucket.stats.set(metric, { min: value, max: value, sum: value, count: 1, last: value, lastTs: sample.ts });
      continue;
    }
    if (value < stat.min) stat.min = value;
    if (value > stat.max) stat.max = value;
    stat.sum += value;
    stat.count++;
    if (sample.ts >= stat.lastTs) {
      stat.last = value;
      stat.lastTs = sample.ts;
    }
  }
}

function deviceRollups(bucket: DeviceBucket): Rollup[] {
  const rows: Rollup[] = [];
  for (const [metric, stat] of bucket.stats) {
    rows.push({
      kind: 'device',
      entityId: bucket.device.id,
      metric,
      bucketStartMs: bucket.bucketStartMs,
      min: stat.min,
      max: stat.max,
      mean: stat.sum / stat.count,
      last: stat.last,
      count: stat.count,
      devicesReporting: 1,
      devicesTotal: 1,
    });
  }
  return rows;
}

/** Device rollups of one minute computed from its raw samples (for late and repaired minutes). */
export function rollupsFromSamples(device: DeviceRef, bucketStartMs: number, samples: readonly CommittedSample[]): Rollup[] {
  const bucket: DeviceBucket = { device, bucketStartMs, stats: new Map() };
  for (const sample of samples) {
    if (bucketStartOf(sample.ts) === bucketStartMs) addSample(bucket, sample);
  }
  return deviceRollups(bucket);
}
