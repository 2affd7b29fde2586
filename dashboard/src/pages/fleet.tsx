/**
 * Fleet: the totals in large type, the last hour as a chart that keeps
 * moving (1-minute history, then every live aggregate appended, points older
 * than an hour dropped), and a card per region. Live from the `fleet` topic.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { AggregateFigures, POWER_METRICS } from '../aggregate.tsx';
import type { AggregateSnapshot, FleetLive } from '../api-types.ts';
import { WindowBuffer, alignColumns } from '../chart-buffer.ts';
import { SERIES_COLORS, TimeChart, type ChartData, type ChartSeries } from '../chart.tsx';
import { useSession } from '../context.ts';
import { formatTime } from '../format.ts';
import { useFreshness, useLoad, useStream } from '../hooks.ts';
import { href } from '../route.ts';
import { Empty, ErrorBox, Loading, PageHead, StaleNote } from '../ui.tsx';

const HOUR_MS = 3_600_000;
const CHART_METRICS = [...POWER_METRICS, 'socPct'] as const;
export const AGGREGATE_CHART_SERIES: readonly ChartSeries[] = [
  { label: 'Battery', color: SERIES_COLORS.battery, kind: 'power' },
  { label: 'Solar', color: SERIES_COLORS.solar, kind: 'power', fill: true },
  { label: 'Grid', color: SERIES_COLORS.grid, kind: 'power' },
  { label: 'Load', color: SERIES_COLORS.load, kind: 'power' },
  { label: 'State of charge', color: SERIES_COLORS.soc, kind: 'percent', dash: [6, 4] },
];

function hourEndingAt(endS: number): [number, number] {
  return [endS - HOUR_MS / 1000, endS];
}

function rowOf(s: AggregateSnapshot): (number | null)[] {
  return CHART_METRICS.map((m) => s.metrics[m]);
}

/** The fleet's live answer with one snapshot (fleet or region) put in. */
export function withSnapshot(live: FleetLive | null, s: AggregateSnapshot): FleetLive {
  const current = live ?? { fleet: null, regions: [] };
  if (s.level === 'fleet') return { ...current, fleet: s };
  if (s.level !== 'region') return current;
  const regions = current.regions.filter((r) => r.id !== s.id);
  regions.push(s);
  regions.sort((a, b) => a.id.localeCompare(b.id));
  return { ...current, regions };
}

export function FleetPage() {
  const { api } = useSession();
  const live = useLoad<FleetLive>('fleet', async (signal) => {
    const answer = await api.fleet(signal);
    return { ...answer, regions: [...answer.regions].sort((a, b) => a.id.localeCompare(b.id)) };
  });

  const buffer = useRef(new WindowBuffer(HOUR_MS, CHART_METRICS.length));
  const [chart, setChart] = useState<ChartData>(() => buffer.current.toAligned());
  const redraw = useCallback(() => {
    buffer.current.trim(Date.now());
    setChart(buffer.current.toAligned());
  }, []);
  const history = useLoad('fleet-history', async (signal) => {
    const answer = await api.fleetHistory({ resolution: '1m', fromMs: Date.now() - HOUR_MS, signal });
    buffer.current.replace(alignColumns(answer.series, CHART_METRICS));
    redraw();
    return answer.series.length;
  });

  const fleet = live.data?.fleet ?? null;
  // Every fleet aggregate, from the stream or a REST answer, moves the chart.
  useEffect(() => {
    if (fleet && buffer.current.push(fleet.ts, rowOf(fleet))) redraw();
  }, [fleet, redraw]);

  const stream = useStream(['fleet'], {
    onEvent: (message) => {
      if (message.name === 'aggregate') live.setData((previous) => withSnapshot(previous, message.data.snapshot));
    },
    refetch: () => void live.reload(),
    onReset: () => {
      void live.reload();
      void history.reload();
    },
  });
  const freshness = useFreshness(stream, 'fleet', true, live.loadedAt);

  if (live.loading && !live.data) return <Loading what="the fleet" />;
  if (!live.data) return <ErrorBox error={live.error} onRetry={() => void live.reload()} />;
  const regions = live.data.regions;

  return (
    <div class={`page page-fleet${freshness.stale ? ' is-stale' : ''}`}>
      <PageHead
        title="Fleet"
        sub={
          <>
            {regions.length} region{regions.length === 1 ? '' : 's'} · aggregate of {formatTime(fleet?.ts)} <StaleNote freshness={freshness} />
          </>
        }
      />
      {live.error ? <ErrorBox error={live.error} onRetry={() => void live.reload()} /> : null}
      {fleet ? (
        <AggregateFigures snapshot={fleet} prefix="fleet-total" size="lg" />
      ) : (
        <Empty>No live aggregate yet: the platform publishes one every second once devices report.</Empty>
      )}

      <section class="panel" aria-labelledby="fleet-chart-title">
        <div class="panel-head">
          <h2 id="fleet-chart-title">Last hour</h2>
          <span class="panel-note">Battery + discharging · Grid + importing · 1-minute history, then live</span>
        </div>
        {history.error && chart[0].length === 0 ? <ErrorBox error={history.error} onRetry={() => void history.reload()} /> : null}
        <TimeChart
          data={chart}
          series={AGGREGATE_CHART_SERIES}
          xRange={hourEndingAt(chart[0][chart[0].length - 1] ?? Date.now() / 1000)}
          label="Fleet power and state of charge over the last hour"
          testid="fleet-chart"
        />
      </section>

      <section aria-labelledby="regions-title">
        <h2 id="regions-title" class="section-title">
          Regions
        </h2>
        {regions.length === 0 ? (
          <Empty>No regions report yet.</Empty>
        ) : (
          <div class="region-grid">
            {regions.map((region) => (
              <article class="card region-card" data-testid={`region-card-${region.id}`} key={region.id}>
                <div class="card-head">
                  <h3>{region.id}</h3>
                  <a class="link-quiet" href={href({ page: 'sites', query: region.id })}>
                    sites →
                  </a>
                </div>
                <AggregateFigures snapshot={region} prefix={`region-${region.id}`} size="sm" />
              </article>
            ))}
          </div>
        )}
      </section>
    </div>
  );
}
