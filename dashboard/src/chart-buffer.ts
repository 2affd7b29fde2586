/**
 * Time series for the charts: columnar history aligned on one time axis, and
 * a moving window (the fleet's last hour) that live points are appended to
 * and old points fall out of. Pure; times in ms, values as the API gives
 * them (W, %), null for a gap. uPlot wants seconds: `toAligned` converts.
 */
import type { ColumnSeries } from './api-types.ts';

export type Column = (number | null)[];

export interface AlignedColumns {
  /** Ascending, distinct, ms since the epoch. */
  ts: number[];
  /** One column per requested metric, as long as `ts`; null where a metric has no point. */
  values: Column[];
}

type ValueField = 'mean' | 'min' | 'max' | 'last';

/**
 * Aligns the series of a columnar history answer on the union of their
 * times, in the order of `metrics` (a metric the answer lacks is all null).
 */
export function alignColumns(series: readonly ColumnSeries[], metrics: readonly string[], field: ValueField = 'mean'): AlignedColumns {
  const wanted = metrics.map((m) => series.find((s) => s.metric === m));
  const times = new Set<number>();
  for (const s of wanted) if (s) for (const t of s.ts) times.add(t);
  const ts = [...times].sort((a, b) => a - b);
  const position = new Map<number, number>();
  ts.forEach((t, i) => position.set(t, i));
  const values = wanted.map((s) => {
    const column: Column = new Array<number | null>(ts.length).fill(null);
    if (!s) return column;
    const source = s[field];
    for (let i = 0; i < s.ts.length; i++) {
      const at = position.get(s.ts[i] as number);
      const v = source[i];
      if (at !== undefined && typeof v === 'number' && Number.isFinite(v)) column[at] = v;
    }
    return column;
  });
  return { ts, values };
}

/**
 * The last `windowMs` of a few series. History goes in with `replace`, live
 * points with `push` (only newer than the newest held: a late or repeated
 * point is dropped), and `trim` drops what fell out of the window.
 */
export class WindowBuffer {
  private ts: number[] = [];
  private values: Column[];

  constructor(
    readonly windowMs: number,
    readonly seriesCount: number,
  ) {
    this.values = Array.from({ length: seriesCount }, () => []);
  }

  get length(): number {
    return this.ts.length;
  }

  get lastTs(): number | null {
    return this.ts.length > 0 ? (this.ts[this.ts.length - 1] as number) : null;
  }

  /** Replaces the content (history), keeping points newer than it that were pushed meanwhile. */
  replace(columns: AlignedColumns): void {
    const keepFrom = columns.ts.length > 0 ? (columns.ts[columns.ts.length - 1] as number) : -Infinity;
    const newerAt = this.ts.findIndex((t) => t > keepFrom);
    const keepTs = newerAt >= 0 ? this.ts.slice(newerAt) : [];
    const keepValues = this.values.map((col) => (newerAt >= 0 ? col.slice(newerAt) : []));
    this.ts = [...columns.ts, ...keepTs];
    this.values = this.values.map((_, i) => [...(columns.values[i] ?? new Array<number | null>(columns.ts.length).fill(null)), ...(keepValues[i] ?? [])]);
  }

  /** Appends one point; false (and nothing changes) unless it is newer than the newest held. */
  push(atMs: number, row: readonly (number | null | undefined)[]): boolean {
    const last = this.lastTs;
    if (!Number.isFinite(atMs) || (last !== null && atMs <= last)) return false;
    this.ts.push(atMs);
    for (let i = 0; i < this.seriesCount; i++) {
      const v = row[i];
      (this.values[i] as Column).push(typeof v === 'number' && Number.isFinite(v) ? v : null);
    }
    return true;
  }

  /** Drops points older than `nowMs - windowMs`; answers how many. */
  trim(nowMs: number): number {
    const cutoff = nowMs - this.windowMs;
    let drop = 0;
    while (drop < this.ts.length && (this.ts[drop] as number) < cutoff) drop++;
    if (drop > 0) {
      this.ts.splice(0, drop);
      for (const col of this.values) col.splice(0, drop);
    }
    return drop;
  }

  /** uPlot's data: [seconds, ...series], fresh arrays. */
  toAligned(): [number[], ...Column[]] {
    return [this.ts.map((t) => t / 1000), ...this.values.map((c) => c.slice())];
  }
}

/** uPlot data from aligned columns: time in seconds. */
export function toUplotData(columns: AlignedColumns): [number[], ...Column[]] {
  return [columns.ts.map((t) => t / 1000), ...columns.values];
}

/** The power axis always shows 0 (the sign is the direction of the flow), with a little room above and below. */
export function powerRange(min: number | null, max: number | null): [number, number] {
  const lo = Math.min(0, min ?? 0);
  const hi = Math.max(0, max ?? 0);
  if (hi === lo) return [lo - 1000, hi + 1000];
  const pad = (hi - lo) * 0.08;
  return [lo < 0 ? lo - pad : 0, hi > 0 ? hi + pad : 0];
}
