import { describe, expect, it } from 'vitest';
import type { Rollup } from '../../store/types.ts';
import { T0, makeSnapshot, publishSnapshot } from '../test-fixtures.ts';
import { provisionDevices, useControlTest } from '../test-helper.ts';

const MINUTE = 60_000;

const t = useControlTest();

function aggregateRollup(kind: Rollup['kind'], entityId: string, metric: string, bucketStartMs: number, mean: number, reporting: number, total: number): Rollup {
  return { kind, entityId, metric, bucketStartMs, min: mean, max: mean, mean, last: mean, count: reporting, devicesReporting: reporting, devicesTotal: total };
}

describe('/api/v1/sites', () => {
  it('creates a site (201), updates it (200) and rejects a bad id', async () => {
    const created = await t.request({ method: 'POST', url: '/api/v1/sites', payload: { id: 'site-1', region: 'north', name: 'Home 1' } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({ id: 'site-1', region: 'north', name: 'Home 1' });
    const updated = await t.request({ method: 'POST', url: '/api/v1/sites', payload: { id: 'site-1', region: 'south', name: 'Home 1' } });
    expect(updated.statusCode).toBe(200);
    expect(t.store.getSite('site-1')?.region).toBe('south');
    const bad = await t.request({ method: 'POST', url: '/api/v1/sites', payload: { id: 'site/1', region: 'north', name: 'x' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^id: must match pattern/);
  });

  it('refuses `overview` as a site id (it is a route under /sites), by saving or by provisioning', async () => {
    const saved = await t.request({ method: 'POST', url: '/api/v1/sites', payload: { id: 'overview', region: 'north', name: 'x' } });
    expect(saved.statusCode).toBe(400);
    expect(saved.json().message).toContain("'overview' is reserved");
    const provisioned = await t.request({ method: 'POST', url: '/api/v1/devices', payload: { type: 'battery', siteId: 'overview', site: { region: 'north', name: 'x' } } });
    expect(provisioned.statusCode).toBe(400);
    expect(t.store.getSite('overview')).toBeUndefined();
    expect(t.store.listDevices({})).toEqual([]);
  });

  it('lists sites with active device counts and live aggregates', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [
      { id: 'bat-1', type: 'battery' },
      { id: 'pv-1', type: 'solar' },
    ]);
    await provisionDevices(t, { id: 'site-2', region: 'south' }, []);
    publishSnapshot(t.live, makeSnapshot('site', 'site-1', T0, { devicesReporting: 1, devicesTotal: 2 }));

    const response = await t.request({ method: 'GET', url: '/api/v1/sites' });
    expect(response.statusCode).toBe(200);
    const items = response.json().items as Array<{ id: string; deviceCount: number; live: { coverage: unknown } | null; region: string }>;
    const site1 = items.find((s) => s.id === 'site-1');
    const site2 = items.find((s) => s.id === 'site-2');
    expect(site1).toMatchObject({ region: 'north', deviceCount: 2, live: { coverage: { devicesReporting: 1, devicesTotal: 2, ratio: 0.5 } } });
    expect(site2).toMatchObject({ region: 'south', deviceCount: 0, live: null });
  });

  it('shows one site with its devices, their twins and its live aggregate', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north', name: 'Home 1' }, [
      { id: 'bat-1', type: 'battery' },
      { id: 'pv-1', type: 'solar' },
    ]);
    await provisionDevices(t, { id: 'site-2', region: 'north' }, [{ id: 'bat-2', type: 'battery' }]);
    t.store.saveDeviceStates([
      {
        deviceId: 'pv-1',
        lastTs: T0,
        lastSeenMs: T0,
        lastSeq: 1,
        metrics: { powerW: 1500 },
        presence: 'online',
        presenceSinceMs: T0 - 60_000,
        status: null,
      },
    ]);
    const snapshot = makeSnapshot('site', 'site-1', T0, { devicesReporting: 1, devicesTotal: 2 });
    publishSnapshot(t.live, snapshot);

    const response = await t.request({ method: 'GET', url: '/api/v1/sites/site-1' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ id: 'site-1', region: 'north', name: 'Home 1', deviceCount: 2 });
    expect(body.live).toEqual(snapshot);
    expect(body.devices.map((d: { id: string }) => d.id).sort()).toEqual(['bat-1', 'pv-1']);
    expect(body.devices.find((d: { id: string }) => d.id === 'pv-1')).toMatchObject({
      online: true,
      presence: 'online',
      presenceSince: new Date(T0 - 60_000).toISOString(),
      metrics: { powerW: 1500 },
    });
    expect(body.devices.find((d: { id: string }) => d.id === 'bat-1')).toMatchObject({ online: false, presence: 'offline', presenceSince: null });

    const unknown = await t.request({ method: 'GET', url: '/api/v1/sites/site-9' });
    expect(unknown.statusCode).toBe(404);
  });

  it('returns site and region history with coverage per bucket', async () => {
    await provisionDevices(t, { id: 'site-1', region: 'north' }, [{ id: 'bat-1', type: 'battery' }]);
    const bucket = T0 - 10 * MINUTE;
    await t.store.writeRollups([
      aggregateRollup('site', 'site-1', 'batteryPowerW', bucket, 2000, 1, 1),
      aggregateRollup('region', 'north', 'batteryPowerW', bucket, 2000, 1, 2),
      aggregateRollup('region', 'north', 'batteryPowerW', bucket + 5 * MINUTE, 4000, 2, 2),
    ]);

    const site = await t.request({ method: 'GET', url: '/api/v1/sites/site-1/history' });
    expect(site.statusCode).toBe(200);
    expect(site.json()).toMatchObject({ kind: 'site', id: 'site-1', resolution: '1m' });
    expect(site.json().series).toEqual([
      { metric: 'batteryPowerW', points: [{ ts: bucket, min: 2000, max: 2000, mean: 2000, last: 2000, count: 1, devicesReporting: 1, devicesTotal: 1 }] },
    ]);

    const region = await t.request({ method: 'GET', url: '/api/v1/regions/north/history?metric=batteryPowerW&resolution=1m' });
    expect(region.statusCode).toBe(200);
    const points = region.json().series[0].points as Array<{ ts: number; devicesReporting: number; devicesTotal: number }>;
    expect(points.map((p) => [p.ts, p.devicesReporting, p.devicesTotal])).toEqual([
      [bucket, 1, 2],
      [bucket + 5 * MINUTE, 2, 2],
    ]);

    expect((await t.request({ method: 'GET', url: '/api/v1/regions/nowhere/history' })).statusCode).toBe(404);
    expect((await t.request({ method: 'GET', url: '/api/v1/sites/site-9/history' })).statusCode).toBe(404);
    for (const url of ['/api/v1/sites/site-1/history?to=999999999999999', '/api/v1/regions/north/history?from=2026-02-31', '/api/v1/fleet/history?to=2023-02-29']) {
      const response = await t.request({ method: 'GET', url });
      expect(response.statusCode, url).toBe(400);
      expect(response.json().message, url).toMatch(/^(from|to): .*(latest time accepted|has no day)/);
    }
    const raw = await t.request({ method: 'GET', url: '/api/v1/sites/site-1/history?resolution=raw' });
    expect(raw.statusCode).toBe(400);
    expect(raw.json().message).toBe('resolution: must be one of 1m, 5m, 15m, 1h');
  });
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
