/**
 * A time chart on uPlot: power series on a W axis (ticks auto-scaled to
 * W/kW/MW), percentages on a 0–100 % axis on the right, a legend that shows
 * the values under the cursor with their units, sized to its container.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { powerRange } from './chart-buffer.ts';
import { formatPercent, formatPower, formatPowerTick, joinUnit } from './format.ts';

export interface ChartSeries {
  label: string;
  /** CSS colour. */
  color: string;
  kind: 'power' | 'percent';
  dash?: number[];
  /** A soft area under the line. */
  fill?: boolean;
}

export type ChartData = [number[], ...(number | null)[][]];

const AXIS = '#9aa6b2';
const GRID = 'rgba(154, 166, 178, 0.14)';

/** The root font size: axes grow with the page's type on wide screens. */
function rootFontPx(): number {
  const px = parseFloat(getComputedStyle(document.documentElement).fontSize);
  return Number.isFinite(px) && px > 0 ? px : 15;
}

/** While the cursor is off the chart, the legend shows the newest point instead of blanks. */
function legendOnLatest(u: uPlot): void {
  const last = u.data[0].length - 1;
  if (last >= 0 && (u.legend.idx === null || u.legend.idx === undefined)) u.setLegend({ idx: last }, false);
}

function optionsFor(series: readonly ChartSeries[], width: number, height: number, xRange: () => [number, number] | null): uPlot.Options {
  const hasPercent = series.some((s) => s.kind === 'percent');
  const hasPower = series.some((s) => s.kind === 'power');
  const px = rootFontPx();
  const font = `${Math.round(px * 0.8)}px system-ui, sans-serif`;
  const axes: uPlot.Axis[] = [{ stroke: AXIS, font, space: px * 6, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1 } }];
  if (hasPower) {
    axes.push({
      scale: 'W',
      stroke: AXIS,
      font,
      size: px * 4.8,
      grid: { stroke: GRID, width: 1 },
      ticks: { stroke: GRID, width: 1 },
      values: (_u, splits) => splits.map((v) => formatPowerTick(v)),
    });
  }
  if (hasPercent) {
    axes.push({
      scale: '%',
      side: 1,
      stroke: AXIS,
      font,
      size: px * 3.4,
      grid: { show: !hasPower, stroke: GRID, width: 1 },
      ticks: { stroke: GRID, width: 1 },
      values: (_u, splits) => splits.map((v) => `${v} %`),
    });
  }
  return {
    width,
    height,
    padding: [12, 8, 0, 4],
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    legend: { live: true },
    hooks: {
      setLegend: [legendOnLatest],
      setData: [
        (u) => {
          // New data moves the legend to the newest point, unless someone is reading under the cursor.
          if ((u.cursor.left ?? -1) < 0 && u.data[0].length > 0) u.setLegend({ idx: u.data[0].length - 1 }, false);
        },
      ],
    },
    scales: {
      x: {
        time: true,
        // The chart's own span (an hour, a dispatch's window) rather than whatever the points cover.
        range: (_u, min, max) => xRange() ?? (min === max ? [min - 60, max + 60] : [min, max]),
      },
      W: { auto: true, range: (_u, min, max) => powerRange(min, max) },
      '%': { auto: false, range: [0, 100] },
    },
    axes,
    series: [
      { label: 'time' },
      ...series.map(
        (s): uPlot.Series => ({
          label: s.label,
          scale: s.kind === 'power' ? 'W' : '%',
          stroke: s.color,
          width: 2,
          dash: s.dash,
          fill: s.fill ? `${s.color}22` : undefined,
          spanGaps: false,
          points: { show: false },
          value: (_u, v) => (v === null || v === undefined ? '—' : s.kind === 'power' ? joinUnit(formatPower(v, { signed: true })) : joinUnit(formatPercent(v))),
        }),
      ),
    ],
  };
}

/** Height for a width: wide screens get taller charts, within bounds. */
function heightFor(width: number, min: number, max: number): number {
  return Math.round(Math.min(max, Math.max(min, width * 0.32)));
}

export function TimeChart({
  data,
  series,
  minHeight = 220,
  maxHeight = 460,
  label,
  testid,
  xRange = null,
}: {
  data: ChartData;
  /** The time span to show, in seconds since the epoch; by default what the data covers. */
  xRange?: [number, number] | null;
  series: readonly ChartSeries[];
  minHeight?: number;
  maxHeight?: number;
  /** What the chart shows, for screen readers. */
  label: string;
  testid?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(data);
  latest.current = data;
  const range = useRef(xRange);
  range.current = xRange;
  const seriesKey = series.map((s) => `${s.label}|${s.kind}|${s.color}`).join(',');

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const width = Math.max(200, el.clientWidth);
    const chart = new uPlot(optionsFor(series, width, heightFor(width, minHeight, maxHeight), () => range.current), latest.current as uPlot.AlignedData, el);
    plot.current = chart;
    const observer = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (w !== chart.width) chart.setSize({ width: w, height: heightFor(w, minHeight, maxHeight) });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // The series' identity is their key; data goes in below without rebuilding.
  }, [seriesKey, minHeight, maxHeight]);

  const [from, to] = xRange ?? [null, null];
  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data, from, to]);

  const empty = data[0].length === 0;
  return (
    <div class="chart" data-testid={testid} data-points={String(data[0].length)}>
      <div class="chart-host" ref={host} role="img" aria-label={label} />
      {empty ? <div class="chart-empty">No data in this range yet</div> : null}
    </div>
  );
}

export const SERIES_COLORS = {
  battery: '#3ecf8e',
  solar: '#f5c542',
  grid: '#5aa9ff',
  load: '#c792ff',
  soc: '#ff9f5a',
  target: '#e6edf3',
  measured: '#3ecf8e',
} as const;
