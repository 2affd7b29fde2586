/**
 * `format=columns` of the history routes: the same figures as the points
 * form, field by field, through fastify's serializer (the response schema
 * is a union of the two forms, so each test reads both over inject).
 */
import { describe, expect, it } from 'vitest';
import type { Rollup } from '../../store/types.ts';
import { T0 } from '../test-fixtures.ts';
import { provisionDevices, useControlTest } from '../test-helper.ts';

const MINUTE = 60_000;
const ROLLUP_FIELDS = ['mean', 'min', 'max', 'last', 'count'] as const;
const AGGREGATE_FIELDS = [...ROLLUP_FIELDS, 'devicesReporting', 'devicesTotal'] as const;

const t = useControlTest();

type Point = Record<string, number>;
type PointSeries = { metric: string; points: Point[] };
type ColumnSeries = { metric: string } & Record<string, number[]>;

function rollup(kind: Rollup['kind'], entityId: string, metric: string, bucketStartMs: number, i: number, coverage: [number, number]): Rollup {
  // Values with fractions and signs, so nothing lines up by accident.
  const mean = (metric === 'socPct' ? 40 : -1500) + i * 37.25;
  return {
    kind,
    entityId,
    metric,
    bucketStartMs,
    min: mean - 10.5,
    max: mean + 12.75,
    mean,
    last: mean + 1,
    count: 6 + (i % 3),
    devicesReporting: coverage[0],
    devicesTotal: coverage[1],
  };
}

/** Twelve 1-minute buckets of two metrics, coverage varying (and one bucket with no devices at all). */
function seriesOf(kind: Rollup['kind'], entityId: string): Rollup[] {
  const coverages: Array<[number, number]> = [[3, 3], [2, 3], [0, 0], [1, 4]];
  return ['batteryPowerW', 'socPct'].flatMap((metric) =>
    Array.from({ length: 12 }, (_, i) => rollup(kind, entityId, metric, T0 - 20 * MINUTE + i * MINUTE, i, coverages[i % coverages.length]!)),
  );
}

async function both(url: string): Promise<{ points: { series: PointSeries[] } & Record<string, unknown>; columns: { series: ColumnSeries[] } & Record<string, unknown> }> {
  const join = url.includes('?') ? '&' : '?';
  const points = await t.request({ method: 'GET', url: `${url}${join}format=points` });
  const columns = await t.request({ method: 'GET', url: `${url}${join}format=columns` });
  expect(points.statusCode, points.body).toBe(200);
  expect(columns.statusCode, columns.body).toBe(200);
  // The default is the points form, unchanged.
  const byDefault = await t.request({ method: 'GET', url });
  expect(byDefault.body).toBe(points.body);
  return { points: points.json(), columns: columns.json() };
}

/** Checks that `columns` holds exactly the figures of `points`, field by field, bucket by bucket. */
function expectSameFigures(points: PointSeries[], columns: ColumnSeries[], fields: readonly string[], withCoverage: boolean): void {
  expect(columns.map((s) => s.metric)).toEqual(points.map((s) => s.metric));
  for (const [index, series] of points.entries()) {
    const column = columns[index]!;
    const expectedKeys = ['metric', 'ts', ...fields, ...(withCoverage ? ['coverage'] : [])];
    expect(Object.keys(column).sort()).toEqual(expectedKeys.sort());
    expect(column.ts).toEqual(series.points.map((p) => p.ts));
    for (const field of fields) expect(column[field], `${series.metric}.${field}`).toEqual(series.points.map((p) => p[field]));
    if (withCoverage) {
      expect(column.coverage).toEqual(series.points.map((p) => (p.devicesTotal === 0 ? 0 : p.devicesReporting! / p.devicesTotal!)));
    }
  }
}

describe('format=columns of site, region and fleet history', () => {
  it.each([
    ['site', 'site-1', '/api/v1/sites/site-1/history'],
    ['region', 'north', '/api/v1/regions/north/history'],
    ['fleet', 'fleet', '/api/v1/fleet/history'],
  ] as const)('%s: the same figures as the points form, at 1 and 5 minutes', async (kind, id, path) => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    await t.store.writeRollups(seriesOf(kind, id));
    for (const resolution of ['1m', '5m']) {
      const { points, columns } = await both(`${path}?resolution=${resolution}`);
      const { series: pointSeries, ...pointHeader } = points;
      const { series: columnSeries, ...columnHeader } = columns;
      expect(columnHeader).toEqual({ ...pointHeader, format: 'columns' });
      expect(pointHeader).toEqual({ kind, id, resolution, from: new Date(T0 - 3_600_000).toISOString(), to: new Date(T0).toISOString() });
      expect(pointSeries.map((s) => s.points.length)).toEqual(resolution === '1m' ? [12, 12] : [3, 3]);
      expectSameFigures(pointSeries, columnSeries, AGGREGATE_FIELDS, true);
    }
  });

  it('gives coverage as devicesReporting / devicesTotal, 0 when there are no devices', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, []);
    await t.store.writeRollups(seriesOf('site', 'site-1').filter((r) => r.metric === 'batteryPowerW').slice(0, 4));
    const response = await t.request({ method: 'GET', url: '/api/v1/sites/site-1/history?format=columns' });
    expect(response.json().series).toEqual([
      expect.objectContaining({ metric: 'batteryPowerW', devicesReporting: [3, 2, 0, 1], devicesTotal: [3, 3, 0, 4], coverage: [1, 2 / 3, 0, 0.25] }),
    ]);
  });

  it('answers an empty range with no series in either form, and a metric filter the same way', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, []);
    await t.store.writeRollups(seriesOf('site', 'site-1'));
    const empty = `from=${T0 - 10 * 24 * 3_600_000}&to=${T0 - 9 * 24 * 3_600_000}`;
    const { points, columns } = await both(`/api/v1/sites/site-1/history?${empty}`);
    expect(points.series).toEqual([]);
    expect(columns).toMatchObject({ format: 'columns', series: [] });
    const filtered = await t.request({ method: 'GET', url: '/api/v1/sites/site-1/history?format=columns&metric=socPct' });
    expect(filtered.json().series.map((s: ColumnSeries) => [s.metric, s.ts!.length])).toEqual([['socPct', 12]]);
  });

  it('refuses an unknown format with a 400 naming the allowed ones', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, []);
    for (const url of ['/api/v1/sites/site-1/history?format=rows', '/api/v1/regions/north/history?format=', '/api/v1/fleet/history?format=COLUMNS']) {
      const response = await t.request({ method: 'GET', url });
      expect(response.statusCode, url).toBe(400);
      expect(response.json(), url).toEqual({ code: 'bad-request', message: 'format: must be one of points, columns' });
    }
  });
});

describe('format=columns of a device\'s telemetry', () => {
  it('gives rollups as columns with the figures of the points form, without coverage', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    await t.store.writeRollups(seriesOf('device', 'bat-1').map((r) => ({ ...r, devicesReporting: 1, devicesTotal: 1 })));
    for (const resolution of ['1m', '15m']) {
      const { points, columns } = await both(`/api/v1/devices/bat-1/telemetry?resolution=${resolution}`);
      const { series: pointSeries, ...pointHeader } = points;
      const { series: columnSeries, ...columnHeader } = columns;
      expect(columnHeader).toEqual({ ...pointHeader, format: 'columns' });
      expect(pointSeries.length).toBe(2);
      expectSameFigures(pointSeries, columnSeries, ROLLUP_FIELDS, false);
    }
  });

  it('refuses columns of raw samples (the default resolution) with a 400 saying why, and a bad format', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    for (const url of ['/api/v1/devices/bat-1/telemetry?format=columns', '/api/v1/devices/bat-1/telemetry?format=columns&resolution=raw']) {
      const response = await t.request({ method: 'GET', url });
      expect(response.statusCode, url).toBe(400);
      expect(response.json(), url).toEqual({
        code: 'bad-request',
        message: 'format: columns needs a rollup resolution (1m, 5m, 15m, 1h); raw samples come only as points',
      });
    }
    const bad = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1/telemetry?resolution=1m&format=csv' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe('format: must be one of points, columns');
    // Raw samples still serialize as before through the union.
    await t.store.writeTelemetry([{ deviceId: 'bat-1', ts: T0 - 1000, seq: 7, metrics: { socPct: 51.5 } }]);
    const raw = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1/telemetry?format=points' });
    expect(raw.json()).toEqual({
      deviceId: 'bat-1',
      resolution: 'raw',
      from: new Date(T0 - 3_600_000).toISOString(),
      to: new Date(T0).toISOString(),
      samples: [{ ts: T0 - 1000, seq: 7, metrics: { socPct: 51.5 } }],
      truncated: false,
    });
  });
});
