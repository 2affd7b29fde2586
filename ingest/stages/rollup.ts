/**
 * rollup: turns committed batches into 1-minute rollups per device and
 * aggregates per site, region and fleet (see rollup-accumulator.ts), emitted
 * on a timer; late device minutes, and the minute the process started in, are
 * recomputed from the raw telemetry in the store. When the input completes (shutdown), every open minute is flushed
 * and the output completes.
 */
import {
  concat,
  concatMap,
  defer,
  endWith,
  filter,
  ignoreElements,
  interval,
  map,
  merge,
  of,
  takeWhile,
  tap,
  type Observable,
  type OperatorFunction,
  type SchedulerLike,
} from 'rxjs';
import type { Rollup, TelemetryStore } from '../../store/types.ts';
import { BUCKET_MS, RollupAccumulator, rollupsFromSamples, type LateBucket, type RepairBucket } from '../rollup-accumulator.ts';
import type { IngestCounters } from '../counters.ts';
import type { CommittedBatch, DeviceRef } from '../types.ts';

export interface RollupOptions {
  accumulator: RollupAccumulator;
  counters: IngestCounters;
  telemetry: TelemetryStore;
  findDevice(deviceId: string): DeviceRef | undefined;
  clock: () => number;
  flushEveryMs: number;
  scheduler?: SchedulerLike;
}

const FINAL = 'final' as const;

export function rollup(options: RollupOptions): OperatorFunction<CommittedBatch, Rollup[]> {
  const { accumulator } = options;
  return (batches$) =>
    merge(
      batches$.pipe(
        tap((batch) => {
          for (const sample of batch.newSamples) accumulator.add(sample);
        }),
        ignoreElements(),
        endWith(FINAL),
      ),
      interval(options.flushEveryMs, options.scheduler),
    ).pipe(
      takeWhile((signal) => signal !== FINAL, true),
      map((signal) => accumulator.close(signal === FINAL ? Infinity : options.clock())),
      concatMap(({ rollups, late, repair }) => concat(of(rollups), recomputeLate(late, options), repairMinutes(repair, options))),
      filter((rollups) => rollups.length > 0),
    );
}

async function recomputeDeviceMinute(device: DeviceRef, bucketStartMs: number, options: RollupOptions): Promise<Rollup[]> {
  options.counters.deviceMinutesRecomputed++;
  const points = await options.telemetry.queryTelemetry({
    deviceId: device.id,
    fromMs: bucketStartMs,
    toMs: bucketStartMs + BUCKET_MS,
    limit: 100_000,
  });
  return rollupsFromSamples(device, bucketStartMs, points.map((p) => ({ device, ts: p.ts, metrics: p.metrics })));
}

/** Device rollups of late minutes, from the store; aggregates are not revised. */
function recomputeLate(late: readonly LateBucket[], options: RollupOptions): Observable<Rollup[]> {
  if (late.length === 0) return of();
  return defer(async () => {
    const rows: Rollup[] = [];
    for (const { deviceId, bucketStartMs } of late) {
      const device = options.findDevice(deviceId);
      if (device) rows.push(...(await recomputeDeviceMinute(device, bucketStartMs, options)));
    }
    return rows;
  });
}

/**
 * Device rollups of minutes that began before the process started and their
 * aggregates: devices that may have samples from before the start are
 * recomputed from the store, the others are taken as accumulated.
 */
function repairMinutes(repair: readonly RepairBucket[], options: RollupOptions): Observable<Rollup[]> {
  if (repair.length === 0) return of();
  return defer(async () => {
    const rows: Rollup[] = [];
    for (const { bucketStartMs, devices, known } of repair) {
      const minutes = [...known];
      for (const minute of known) rows.push(...minute.rollups);
      for (const device of devices) {
        const rollups = await recomputeDeviceMinute(device, bucketStartMs, options);
        minutes.push({ device, rollups });
        rows.push(...rollups);
      }
      rows.push(...options.accumulator.aggregate(bucketStartMs, minutes));
    }
    return rows;
  });
}
