/**
 * One site: its live aggregate, its devices (live metrics with units,
 * presence, what was asked versus what the device reports doing), and its
 * history over an hour (1-minute buckets), a day (5 minutes) or a week
 * (1 hour). Live from the `site:<id>` topic (`aggregate`, `site-devices`).
 */
import { useEffect, useState } from 'preact/hooks';
import { AggregateFigures } from '../aggregate.tsx';
import { ApiError } from '../api.ts';
import type { DeviceTwin, Resolution, SiteDetail } from '../api-types.ts';
import { alignColumns, toUplotData } from '../chart-buffer.ts';
import { TimeChart } from '../chart.tsx';
import { useSession } from '../context.ts';
import { MISSING, formatAgo, formatDateTime, formatMetric, formatPower, joinUnit, metricLabel, parseIso } from '../format.ts';
import { useFreshness, useLoad, useNow, useStream } from '../hooks.ts';
import { href } from '../route.ts';
import { Badge, Empty, ErrorBox, Loading, Num, PageHead, StaleNote } from '../ui.tsx';
import { AGGREGATE_CHART_SERIES } from './fleet.tsx';

const RANGES = [
  { key: 'hour', label: 'Hour', resolution: '1m', spanMs: 3_600_000 },
  { key: 'day', label: 'Day', resolution: '5m', spanMs: 86_400_000 },
  { key: 'week', label: 'Week', resolution: '1h', spanMs: 7 * 86_400_000 },
] as const satisfies readonly { key: string; label: string; resolution: Resolution; spanMs: number }[];
type RangeKey = (typeof RANGES)[number]['key'];
const HISTORY_METRICS = ['batteryPowerW', 'solarPowerW', 'gridPowerW', 'loadW', 'socPct'] as const;

export function SitePage({ id }: { id: string }) {
  const { api } = useSession();
  const site = useLoad<SiteDetail>(`site:${id}`, (signal) => api.site(id, signal));
  const topic = `site:${id}`;
  const stream = useStream([topic], {
    onEvent: (message) => {
      if (message.name === 'aggregate' && message.data.snapshot.level === 'site' && message.data.snapshot.id === id) {
        const snapshot = message.data.snapshot;
        site.setData((previous) => (previous ? { ...previous, live: snapshot } : previous));
      } else if (message.name === 'site-devices') {
        const devices = message.data.devices;
        site.setData((previous) => (previous ? { ...previous, devices } : previous));
      }
    },
    refetch: () => void site.reload(),
  });
  const freshness = useFreshness(stream, topic, (site.data?.live?.coverage.devicesReporting ?? 0) > 0, site.loadedAt);

  if (site.loading && !site.data) return <Loading what={`site ${id}`} />;
  if (!site.data) {
    if (site.error instanceof ApiError && site.error.status === 404) {
      return (
        <Empty>
          No site <span class="mono">{id}</span>. <a href={href({ page: 'sites', query: '' })}>All sites</a>
        </Empty>
      );
    }
    return <ErrorBox error={site.error} onRetry={() => void site.reload()} />;
  }
  const s = site.data;
  const devices = [...s.devices].sort((a, b) => a.type.localeCompare(b.type) || a.id.localeCompare(b.id));

  return (
    <div class={`page page-site${freshness.stale ? ' is-stale' : ''}`}>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href={href({ page: 'sites', query: '' })}>Sites</a> / <span class="mono">{s.id}</span>
      </nav>
      <PageHead
        title={s.name}
        sub={
          <>
            <span class="mono">{s.id}</span> · region <a href={href({ page: 'sites', query: s.region })}>{s.region}</a> · {s.deviceCount} active device
            {s.deviceCount === 1 ? '' : 's'} <StaleNote freshness={freshness} />
          </>
        }
      />
      {site.error ? <ErrorBox error={site.error} onRetry={() => void site.reload()} /> : null}
      {s.live ? (
        <AggregateFigures snapshot={s.live} prefix={`site-${s.id}`} size="md" />
      ) : (
        <Empty>No live aggregate for this site yet: none of its devices has reported.</Empty>
      )}

      <SiteHistory id={s.id} />

      <section aria-labelledby="devices-title">
        <h2 id="devices-title" class="section-title">
          Devices
        </h2>
        {devices.length === 0 ? (
          <Empty>This site has no devices.</Empty>
        ) : (
          <div class="device-grid">
            {devices.map((device) => (
              <DeviceCard device={device} key={device.id} />
            ))}
          </div>
        )}
      </section>
    </div>
  );
}

function SiteHistory({ id }: { id: string }) {
  const { api } = useSession();
  const [range, setRange] = useState<RangeKey>('hour');
  const spec = RANGES.find((r) => r.key === range) ?? RANGES[0];
  const history = useLoad(`site-history:${id}:${range}`, async (signal) => {
    const toMs = Date.now();
    const answer = await api.siteHistory(id, { resolution: spec.resolution, fromMs: toMs - spec.spanMs, signal });
    return { data: toUplotData(alignColumns(answer.series, HISTORY_METRICS)), span: [(toMs - spec.spanMs) / 1000, toMs / 1000] as [number, number] };
  });
  // The newest bucket fills up as time goes: fetch again every minute.
  const { reload } = history;
  useEffect(() => {
    const timer = window.setInterval(() => void reload(), 60_000);
    return () => window.clearInterval(timer);
  }, [reload]);
  const data = history.data?.data ?? toUplotData({ ts: [], values: HISTORY_METRICS.map(() => []) });
  return (
    <section class="panel" aria-labelledby="site-history-title">
      <div class="panel-head">
        <h2 id="site-history-title">History</h2>
        <div class="segmented" role="group" aria-label="Time range">
          {RANGES.map((r) => (
            <button type="button" key={r.key} aria-pressed={r.key === range} class={r.key === range ? 'active' : ''} onClick={() => setRange(r.key)}>
              {r.label}
            </button>
          ))}
        </div>
        <span class="panel-note">
          {spec.resolution} buckets · Battery + discharging · Grid + importing
          {history.loading ? ' · loading…' : ''}
        </span>
      </div>
      {history.error ? <ErrorBox error={history.error} onRetry={() => void history.reload()} /> : null}
      <TimeChart data={data} series={AGGREGATE_CHART_SERIES} label={`Site power and state of charge, last ${range}`} testid="site-chart" maxHeight={340} xRange={history.data?.span ?? null} />
    </section>
  );
}

const TYPE_LABEL: Record<DeviceTwin['type'], string> = { battery: 'Battery', solar: 'Solar inverter', meter: 'Meter' };

/** The metrics worth reading first, per device type; the rest follow by name. */
const LEADING_METRICS: Record<DeviceTwin['type'], string[]> = {
  battery: ['powerW', 'socPct', 'energyWh', 'capacityWh', 'tempC'],
  solar: ['powerW', 'energyTodayWh', 'tempC'],
  meter: ['powerW', 'loadW', 'voltageV'],
};

function orderedMetrics(device: DeviceTwin): string[] {
  const lead = LEADING_METRICS[device.type] ?? [];
  const names = Object.keys(device.metrics);
  return [...lead.filter((m) => names.includes(m)), ...names.filter((m) => !lead.includes(m)).sort()];
}

function DeviceCard({ device }: { device: DeviceTwin }) {
  const now = useNow(1_000);
  const since = parseIso(device.presenceSince);
  return (
    <article class={`card device-card presence-${device.presence}${device.revoked ? ' is-revoked' : ''}`} data-testid={`site-device-${device.id}`}>
      <div class="card-head">
        <div>
          <h3>{TYPE_LABEL[device.type] ?? device.type}</h3>
          <div class="mono muted small">{device.id}</div>
        </div>
        <div class="device-presence">
          {device.revoked ? (
            <Badge kind="offline">revoked</Badge>
          ) : (
            <Badge kind={device.presence} testid={`site-device-${device.id}-presence`}>
              {device.presence}
            </Badge>
          )}
          <div class="muted small">
            {since !== null ? `since ${formatAgo(since, now).replace(/ ago$/, '')}` : 'never seen'}
            {device.lastSeenMs !== null ? ` · heard ${formatAgo(device.lastSeenMs, now)}` : ''}
          </div>
        </div>
      </div>
      <dl class="metric-list">
        {orderedMetrics(device).map((name) => {
          const value = device.metrics[name];
          const signed = name === 'powerW' && device.type !== 'solar';
          return (
            <div class="metric" key={name}>
              <dt title={name}>{metricLabel(name)}</dt>
              <dd>
                <Num f={formatMetric(name, value, { signed })} value={value} testid={`site-device-${device.id}-${name}`} />
              </dd>
            </div>
          );
        })}
        {Object.keys(device.metrics).length === 0 ? <div class="muted">No telemetry yet.</div> : null}
      </dl>
      {device.type === 'meter' ? <div class="muted small">power + importing from the grid, − exporting</div> : null}
      {device.type === 'battery' ? <div class="muted small">power + discharging, − charging</div> : null}
      <ControlView device={device} now={now} />
    </article>
  );
}

function describeParams(params: Record<string, unknown>): string {
  return Object.entries(params)
    .map(([key, value]) => {
      if (typeof value === 'number' && /W$/.test(key)) return `${key} ${joinUnit(formatPower(value, { signed: key === 'powerW' }))}`;
      return `${key} ${value === null ? 'none' : String(value)}`;
    })
    .join(', ');
}

function ControlView({ device, now }: { device: DeviceTwin; now: number }) {
  const { desired, reported, agree } = device.control;
  if (device.type === 'meter' && desired === null && reported === null) return null;
  const until = parseIso(desired?.until);
  const reportedUntil = parseIso(reported?.until ?? null);
  return (
    <div class="control" data-testid={`site-device-${device.id}-control`} data-agree={agree === null ? '' : String(agree)}>
      <div class="control-head">
        <span>Control</span>
        {agree === null ? (
          <Badge kind="unknown" title="the device reports nothing about its control yet">no report</Badge>
        ) : agree ? (
          <Badge kind="ok">agree</Badge>
        ) : (
          <Badge kind="bad" title="the device does not follow what was asked (yet)">disagree</Badge>
        )}
      </div>
      <dl class="control-grid">
        <dt>Desired</dt>
        <dd>
          {desired === null ? (
            <span class="muted">local control</span>
          ) : (
            <>
              <strong>{desired.type}</strong> {describeParams(desired.params)} · {desired.state}
              {until !== null ? <span class="muted"> · until {formatDateTime(until)} ({formatAgo(until, now)})</span> : null}
            </>
          )}
        </dd>
        <dt>Reported</dt>
        <dd>
          {reported === null ? (
            <span class="muted">{MISSING}</span>
          ) : (
            <>
              {reported.mode !== undefined ? <strong>{reported.mode}</strong> : null}
              {reported.setpointW !== undefined && reported.setpointW !== null ? ` setpoint ${joinUnit(formatPower(reported.setpointW, { signed: true }))}` : ''}
              {reported.curtailW !== undefined ? ` curtailment ${reported.curtailW === null ? 'none' : joinUnit(formatPower(reported.curtailW))}` : ''}
              {reported.commandId ? <span class="muted"> · command {reported.commandId.slice(0, 8)}</span> : <span class="muted"> · local control</span>}
              {reportedUntil !== null ? <span class="muted"> · until {formatDateTime(reportedUntil)}</span> : null}
            </>
          )}
        </dd>
      </dl>
    </div>
  );
}
