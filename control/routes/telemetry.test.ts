import { beforeEach, describe, expect, it } from 'vitest';
import type { Rollup } from '../../store/types.ts';
import { T0 } from '../test-fixtures.ts';
import { provisionDevices, useControlTest } from '../test-helper.ts';

const MINUTE = 60_000;

const t = useControlTest();
beforeEach(async () => {
  await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
  // Ten samples, one every 10 s, ending 10 s before now.
  await t.store.writeTelemetry(
    Array.from({ length: 10 }, (_, i) => ({
      deviceId: 'bat-1',
      ts: T0 - 100_000 + i * 10_000,
      seq: i,
      metrics: { socPct: 50 + i, powerW: -1000 * i },
    })),
  );
});

function deviceRollup(metric: string, bucketStartMs: number, values: { min: number; max: number; mean: number; last: number; count: number }): Rollup {
  return { kind: 'device', entityId: 'bat-1', metric, bucketStartMs, ...values, devicesReporting: 1, devicesTotal: 1 };
}

describe('GET /api/v1/devices/:id/telemetry', () => {
  it('returns raw samples of the last hour by default, in time order', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1/telemetry' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({
      deviceId: 'bat-1',
      resolution: 'raw',
      from: new Date(T0 - 3_600_000).toISOString(),
      to: new Date(T0).toISOString(),
      truncated: false,
    });
    expect(body.samples).toHaveLength(10);
    expect(body.samples[0]).toEqual({ ts: T0 - 100_000, seq: 0, metrics: { socPct: 50, powerW: 0 } });
    expect(body.samples.map((s: { seq: number }) => s.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('filters metrics, honours from/to in ISO and ms, and says when limit cut the answer', async () => {
    const from = new Date(T0 - 60_000).toISOString();
    const to = String(T0 - 20_000);
    const response = await t.request({
      method: 'GET',
      url: `/api/v1/devices/bat-1/telemetry?metric=socPct&from=${encodeURIComponent(from)}&to=${to}&limit=2`,
    });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    // Samples at -60 s … -30 s are in [from, to); the first two fit the limit.
    expect(body.samples).toEqual([
      { ts: T0 - 60_000, seq: 4, metrics: { socPct: 54 } },
      { ts: T0 - 50_000, seq: 5, metrics: { socPct: 55 } },
    ]);
    expect(body.truncated).toBe(true);
  });

  it('returns 1m rollups per metric', async () => {
    const bucket = T0 - 2 * MINUTE;
    await t.store.writeRollups([
      deviceRollup('socPct', bucket, { min: 50, max: 55, mean: 52.5, last: 55, count: 6 }),
      deviceRollup('socPct', bucket + MINUTE, { min: 56, max: 59, mean: 57.5, last: 59, count: 4 }),
      deviceRollup('powerW', bucket, { min: -5000, max: 0, mean: -2500, last: -5000, count: 6 }),
    ]);
    const response = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1/telemetry?resolution=1m&metric=socPct&metric=powerW' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ deviceId: 'bat-1', resolution: '1m' });
    expect(body.samples).toBeUndefined();
    const byMetric = Object.fromEntries(body.series.map((s: { metric: string; points: unknown[] }) => [s.metric, s.points]));
    expect(byMetric.socPct).toEqual([
      { ts: bucket, min: 50, max: 55, mean: 52.5, last: 55, count: 6 },
      { ts: bucket + MINUTE, min: 56, max: 59, mean: 57.5, last: 59, count: 4 },
    ]);
    expect(byMetric.powerW).toEqual([{ ts: bucket, min: -5000, max: 0, mean: -2500, last: -5000, count: 6 }]);

    const onlySoc = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1/telemetry?resolution=1m&metric=socPct' });
    expect(onlySoc.json().series.map((s: { metric: string }) => s.metric)).toEqual(['socPct']);
  });

  it('rejects bad from, to, resolution and limit with 400 naming the parameter', async () => {
    const cases: Array<[string, RegExp]> = [
      ['resolution=2m', /^resolution: must be one of raw, 1m, 5m, 15m, 1h$/],
      ['from=yesterday', /^from: 'yesterday' is neither/],
      ['to=2024-02-30Tnoon', /^to: /],
      [`from=${T0}&to=${T0 - 1}`, /^from: .* must be before to/],
      [`from=${T0 - 8 * 24 * 3_600_000}`, /^from\/to: a raw query spans at most 7 d/],
      [`resolution=1h&from=${T0 - 500 * 24 * 3_600_000}`, /^from\/to: a query spans at most 400 d/],
      [`resolution=1m&from=${T0 - 30 * 24 * 3_600_000}`, /^resolution: .* coarser/],
      ['limit=10001', /^limit: must be <= 10000$/],
      ['limit=0', /^limit: must be >= 1$/],
      ['metric=Bad-Name', /^metric\.0: must match pattern/],
    ];
    for (const [query, message] of cases) {
      const response = await t.request({ method: 'GET', url: `/api/v1/devices/bat-1/telemetry?${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(response.json(), query).toMatchObject({ code: 'bad-request' });
      expect(response.json().message, query).toMatch(message);
    }
  });

  it('answers 400, not 500 or a rolled-over date, for times out of range or off the calendar', async () => {
    const cases: Array<[string, RegExp]> = [
      ['to=999999999999999', /^to: '999999999999999' is after 9999-12-31T23:59:59.999Z/],
      ['resolution=1h&to=999999999999999', /^to: .*latest time accepted$/],
      ['from=2026-02-31', /^from: '2026-02-31' is not a real time: February 2026 has no day 31/],
      ['from=2024-02-30T00:00:00Z&to=2024-03-01T00:00:00Z', /^from: .*February 2024 has no day 30/],
      ['to=1969-12-31T00:00:00Z', /^to: .*before 1970-01-01T00:00:00.000Z/],
    ];
    for (const [query, message] of cases) {
      const response = await t.request({ method: 'GET', url: `/api/v1/devices/bat-1/telemetry?${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(response.json(), query).toEqual({ code: 'bad-request', message: expect.stringMatching(message) });
    }
    const latest = await t.request({ method: 'GET', url: '/api/v1/devices/bat-1/telemetry?to=9999-12-31T23:59:59.999Z' });
    expect(latest.statusCode).toBe(200);
    expect(latest.json()).toMatchObject({ to: '9999-12-31T23:59:59.999Z', samples: [] });
  });

  it('answers 404 for an unknown device', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/devices/nobody/telemetry' });
    expect(response.statusCode).toBe(404);
  });
});
