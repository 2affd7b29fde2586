/**
 * Live aggregates: every `intervalMs`, the twin is summed up per site, region
 * and fleet. A device counts when it is online, has sent telemetry and was
 * heard from within `windowMs`; the others are left out and the coverage
 * says how many. A device that has connected but not yet sent a sample is
 * not reporting: counting it would show full coverage over missing values.
 */
import { interval, map, type Observable, type SchedulerLike } from 'rxjs';
import type { AggregateLevel, AggregateSnapshot } from '../protocol/index.ts';
import { MetricsSum } from './aggregate-metrics.ts';
import { isConnected } from '../store/types.ts';
import type { Directory } from './directory.ts';
import type { Twin } from './twin.ts';

export interface LiveAggregatesOptions {
  twin: Twin;
  directory: Directory;
  clock: () => number;
  windowMs: number;
  intervalMs: number;
  scheduler?: SchedulerLike;
}

export function computeLiveAggregates(options: Omit<LiveAggregatesOptions, 'intervalMs' | 'scheduler'>): AggregateSnapshot[] {
  const { twin, directory, windowMs } = options;
  const nowMs = options.clock();
  const sums = new Map<string, { level: AggregateLevel; id: string; sum: MetricsSum }>();
  const sumOf = (level: AggregateLevel, id: string): MetricsSum => {
    const key = `${level}/${id}`;
    let entry = sums.get(key);
    if (!entry) sums.set(key, (entry = { level, id, sum: new MetricsSum() }));
    return entry.sum;
  };
  // Every site and region appears, even with nothing reporting.
  sumOf('fleet', 'fleet');
  for (const siteId of directory.sites()) {
    sumOf('site', siteId);
    const region = directory.regionOf(siteId);
    if (region !== undefined) sumOf('region', region);
  }
  for (const state of twin.all()) {
    if (!isConnected(state) || state.lastTs === null || state.lastSeenMs === null || state.lastSeenMs < nowMs - windowMs) continue;
    const device = directory.cachedDevice(state.deviceId);
    if (!device) continue;
    sumOf('fleet', 'fleet').add(device.id, device.type, state.metrics);
    sumOf('site', device.siteId).add(device.id, device.type, state.metrics);
    const region = directory.regionOf(device.siteId);
    if (region !== undefined) sumOf('region', region).add(device.id, device.type, state.metrics);
  }
  const counts = directory.deviceCounts();
  const snapshots: AggregateSnapshot[] = [];
  for (const { level, id, sum } of sums.values()) {
    const total = level === 'fleet' ? counts.fleet : ((level === 'site' ? counts.bySite : counts.byRegion).get(id) ?? 0);
    const devicesReporting = sum.devices.size;
    const devicesTotal = Math.max(total, devicesReporting);
    snapshots.push({
      level,
      id,
      ts: nowMs,
      windowMs,
      coverage: { devicesReporting, devicesTotal, ratio: devicesTotal === 0 ? 0 : devicesReporting / devicesTotal },
      metrics: sum.toMetrics(),
    });
  }
  return snapshots;
}

export function liveAggregates$(options: LiveAggregatesOptions): Observable<AggregateSnapshot[]> {
  return interval(options.intervalMs, options.scheduler).pipe(map(() => computeLiveAggregates(options)));
}
