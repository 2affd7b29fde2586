/** Time series as the API shows them: rollups grouped into one series per metric. */
import type { FastifyReply } from 'fastify';
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

/** One metric's rollups as one array per field: index i of every array is bucket i. */
export interface RollupColumns {
  metric: string;
  ts: number[];
  mean: number[];
  min: number[];
  max: number[];
  last: number[];
  count: number[];
}

export interface AggregateColumns extends RollupColumns {
  devicesReporting: number[];
  devicesTotal: number[];
  /** devicesReporting / devicesTotal, 0 when devicesTotal is 0. */
  coverage: number[];
}

/**
 * Rollups (in metric, time order from the store) as columns per metric, in
 * one pass that only appends numbers to arrays: no object per bucket (a
 * site's day at 1 minute is 10,000 of them as points). Keeps the store's
 * order, as groupSeries does. `empty` makes a metric's columns, `append`
 * adds one rollup to them.
 */
function toColumns<C extends RollupColumns>(rollups: readonly Rollup[], empty: (metric: string) => C, append: (columns: C, r: Rollup) => void): C[] {
  const byMetric = new Map<string, C>();
  let columns: C | undefined;
  for (const r of rollups) {
    if (columns?.metric !== r.metric) {
      columns = byMetric.get(r.metric);
      if (!columns) byMetric.set(r.metric, (columns = empty(r.metric)));
    }
    columns.ts.push(r.bucketStartMs);
    columns.mean.push(r.mean);
    columns.min.push(r.min);
    columns.max.push(r.max);
    columns.last.push(r.last);
    columns.count.push(r.count);
    append(columns, r);
  }
  return [...byMetric.values()];
}

export function presentDeviceColumns(rollups: readonly Rollup[]): RollupColumns[] {
  return toColumns(rollups, (metric) => ({ metric, ts: [], mean: [], min: [], max: [], last: [], count: [] }), () => undefined);
}

/** As presentDeviceColumns, with coverage per bucket. */
export function presentAggregateColumns(rollups: readonly Rollup[]): AggregateColumns[] {
  return toColumns<AggregateColumns>(
    rollups,
    (metric) => ({ metric, ts: [], mean: [], min: [], max: [], last: [], count: [], devicesReporting: [], devicesTotal: [], coverage: [] }),
    (columns, r) => {
      columns.devicesReporting.push(r.devicesReporting);
      columns.devicesTotal.push(r.devicesTotal);
      columns.coverage.push(r.devicesTotal === 0 ? 0 : r.devicesReporting / r.devicesTotal);
    },
  );
}

/**
 * Sends a history answer. The columns form is built here field by field
 * (nothing else can be in it) and is arrays of numbers, which
 * JSON.stringify writes several times faster than the response schema's
 * serializer: on Node 20 that one writes arrays item by item below 300,000
 * items. The points form keeps the schema's serializer.
 */
export function sendHistory<T extends object>(reply: FastifyReply, history: T): T {
  if ('format' in history && history.format === 'columns') reply.serializer((payload: unknown) => JSON.stringify(payload));
  return history;
}
