/** Time series as the API shows them: rollups grouped into one series per metric. */
import type { FastifyReply } from 'fastify';
import type { Rollup, RollupColumns as StoredRollupColumns, TelemetryPoint } from '../../store/types.ts';

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

/** A device's rollup columns as the API shows them (the store's arrays, renamed; nothing copied). */
export function presentDeviceColumns(columns: readonly StoredRollupColumns[]): RollupColumns[] {
  return columns.map((c) => ({ metric: c.metric, ts: c.bucketStartMs, mean: c.mean, min: c.min, max: c.max, last: c.last, count: c.count }));
}

/** As presentDeviceColumns, with coverage per bucket. */
export function presentAggregateColumns(columns: readonly StoredRollupColumns[]): AggregateColumns[] {
  return columns.map((c) => ({
    metric: c.metric,
    ts: c.bucketStartMs,
    mean: c.mean,
    min: c.min,
    max: c.max,
    last: c.last,
    count: c.count,
    devicesReporting: c.devicesReporting,
    devicesTotal: c.devicesTotal,
    coverage: c.devicesReporting.map((reporting, i) => (c.devicesTotal[i] === 0 ? 0 : reporting / c.devicesTotal[i]!)),
  }));
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
