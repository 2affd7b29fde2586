import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { T0, makeSnapshot, publishSnapshot } from '../test-fixtures.ts';
import { startControlTest, type ControlTest } from '../test-helper.ts';

let t: ControlTest;
beforeEach(async () => {
  t = await startControlTest();
});
afterEach(async () => {
  await t.close();
});

describe('/api/v1/fleet', () => {
  it('is empty before ingest published anything', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/fleet' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ fleet: null, regions: [] });
  });

  it('shows the newest fleet and region aggregates with their coverage', async () => {
    publishSnapshot(t.live, makeSnapshot('fleet', 'fleet', T0 - 1000, { devicesReporting: 1, devicesTotal: 4 }));
    publishSnapshot(t.live, makeSnapshot('fleet', 'fleet', T0, { devicesReporting: 3, devicesTotal: 4 }));
    publishSnapshot(t.live, makeSnapshot('region', 'south', T0, { devicesReporting: 1, devicesTotal: 1 }));
    publishSnapshot(t.live, makeSnapshot('region', 'north', T0, { devicesReporting: 2, devicesTotal: 3 }));
    publishSnapshot(t.live, makeSnapshot('site', 'site-1', T0, { devicesReporting: 2, devicesTotal: 2 }));

    const response = await t.request({ method: 'GET', url: '/api/v1/fleet' });
    const body = response.json();
    expect(body.fleet).toMatchObject({ level: 'fleet', id: 'fleet', ts: T0, coverage: { devicesReporting: 3, devicesTotal: 4, ratio: 0.75 } });
    expect(body.fleet.metrics).toEqual(makeSnapshot('fleet', 'fleet', T0, { devicesReporting: 3, devicesTotal: 4 }).metrics);
    expect(body.regions.map((r: { id: string; coverage: { ratio: number } }) => [r.id, r.coverage.ratio])).toEqual([
      ['north', 2 / 3],
      ['south', 1],
    ]);
  });

  it('returns fleet history from rollups of kind fleet', async () => {
    await t.store.writeRollups([
      {
        kind: 'fleet',
        entityId: 'fleet',
        metric: 'solarPowerW',
        bucketStartMs: T0 - 120_000,
        min: 1000,
        max: 3000,
        mean: 2000,
        last: 3000,
        count: 12,
        devicesReporting: 3,
        devicesTotal: 4,
      },
    ]);
    const response = await t.request({ method: 'GET', url: '/api/v1/fleet/history?metric=solarPowerW' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      kind: 'fleet',
      id: 'fleet',
      series: [{ metric: 'solarPowerW', points: [{ ts: T0 - 120_000, mean: 2000, devicesReporting: 3, devicesTotal: 4 }] }],
    });
  });
});
