/** Time series as the API shows them: rollups grouped into one series per metric. */
import type { Rollup, TelemetryPoint } from '../../store/types.ts';

export interface RollupPoint {
  ts: number;
  min: number;
  max: number;
  mean: number;
  last: number;
  count: number;
}

export interface AggregatePoint extends RollupPoint {
  devicesReporting: number;
  devicesTotal: number;
}

export function presentSamples(points: readonly TelemetryPoint[]): Array<{ ts: number; seq: number; metrics: Record<string, number> }> {
  return points.map((p) => ({ ts: p.ts, seq: p.seq, metrics: p.metrics }));
}

/** Groups rollups (in metric, time order from the store) into series; keeps the store's order. */
export function groupSeries<P>(rollups: readonly Rollup[], presentPoint: (r: Rollup) => P): Array<{ metric: string; points: P[] }> {
  const byMetric = new Map<string, P[]>();
  for (const r of rollups) {
    let points = byMetric.get(r.metric);
    if (!points) byMetric.set(r.metric, (points = []));
    points.push(presentPoint(r));
  }
  return [...byMetric].map(([metric, points]) => ({ metric, points }));
}

export function presentDevicePoint(r: Rollup): RollupPoint {
  return { ts: r.bucketStartMs, min: r.min, max: r.max, mean: r.mean, last: r.last, count: r.count };
}

// A literal rather than a spread of presentDevicePoint: a day of 1-minute
// points is ten thousand of these per response.
export function presentAggregatePoint(r: Rollup): AggregatePoint {
  return {
    ts: r.bucketStartMs,
    min: r.min,
    max: r.max,
    mean: r.mean,
    last: r.last,
    count: r.count,
    devicesReporting: r.devicesReporting,
    devicesTotal: r.devicesTotal,
  };
}
