import { describe, expect, it } from 'vitest';
import type { AlertSeverity, AlertSubjectKind } from '../../protocol/index.ts';
import { querySitesOverview } from '../queries/sites-overview.ts';
import { T0, makeSnapshot, publishSnapshot } from '../test-fixtures.ts';
import { provisionDevices, useControlTest } from '../test-helper.ts';

const t = useControlTest();

/** Opens an alert through the store as a rule would; returns its id. */
function fire(
  ruleId: string,
  subjectKind: AlertSubjectKind,
  subjectId: string,
  severity: AlertSeverity,
  labels: Record<string, string>,
): string {
  const [event] = t.store.alerts.applyRuleResults({
    signals: [{ ruleId, severity, subjectKind, subjectId, signal: 'fire', atMs: T0 - 1000, summary: `${ruleId} on ${subjectId}`, value: null, labels, flapWindowMs: 0 }],
  });
  return event!.alert.id;
}

/**
 * Three sites: alpha (north; battery, solar) and bravo (south; battery)
 * with live aggregates, charlie (north; two devices, one revoked) without.
 * Open alerts: alpha has a site alert, a critical battery alert and an
 * acknowledged solar alert; bravo a critical device alert whose labels have
 * no siteId (found through the registry) and a resolved one; north has a
 * region alert (no site's).
 */
async function seed(): Promise<void> {
  await provisionDevices(t, { id: 'alpha', region: 'north', name: 'Alpha farm' }, [
    { id: 'bat-a', type: 'battery' },
    { id: 'pv-a', type: 'solar' },
  ]);
  await provisionDevices(t, { id: 'bravo', region: 'south', name: 'Bravo house' }, [{ id: 'bat-b', type: 'battery' }]);
  await provisionDevices(t, { id: 'charlie', region: 'north', name: 'Charlie' }, [
    { id: 'bat-c', type: 'battery' },
    { id: 'meter-c', type: 'meter' },
  ]);
  expect((await t.request({ method: 'DELETE', url: '/api/v1/devices/meter-c' })).statusCode).toBe(204);
  publishSnapshot(t.live, makeSnapshot('site', 'alpha', T0 - 2000, { devicesReporting: 1, devicesTotal: 2 }));
  publishSnapshot(t.live, makeSnapshot('site', 'bravo', T0 - 3000, { devicesReporting: 0, devicesTotal: 1 }));
  publishSnapshot(t.live, makeSnapshot('region', 'north', T0 - 2000, { devicesReporting: 1, devicesTotal: 3 }));

  fire('site-coverage', 'site', 'alpha', 'warning', { siteId: 'alpha', region: 'north' });
  fire('battery-overheat', 'device', 'bat-a', 'critical', { deviceType: 'battery', siteId: 'alpha', region: 'north' });
  const acknowledged = fire('device-offline', 'device', 'pv-a', 'warning', { deviceType: 'solar', siteId: 'alpha', region: 'north' });
  t.store.alerts.acknowledgeAlert(acknowledged, { actor: 'admin', note: null, atMs: T0 - 500 });
  fire('battery-overheat', 'device', 'bat-b', 'critical', {});
  const resolved = fire('device-offline', 'device', 'bat-b', 'warning', { deviceType: 'battery', siteId: 'bravo' });
  t.store.alerts.resolveAlert(resolved, { actor: 'admin', reason: 'fixed', atMs: T0 - 400 });
  fire('region-coverage', 'region', 'north', 'critical', { region: 'north' });
}

const alpha = makeSnapshot('site', 'alpha', T0 - 2000, { devicesReporting: 1, devicesTotal: 2 });
const bravo = makeSnapshot('site', 'bravo', T0 - 3000, { devicesReporting: 0, devicesTotal: 1 });

describe('GET /api/v1/sites/overview', () => {
  it('answers every site in id order, one array per field, with live figures and open alerts', async () => {
    await seed();
    const response = await t.request({ method: 'GET', url: '/api/v1/sites/overview' });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({
      at: new Date(T0).toISOString(),
      count: 3,
      columns: {
        id: ['alpha', 'bravo', 'charlie'],
        name: ['Alpha farm', 'Bravo house', 'Charlie'],
        region: ['north', 'south', 'north'],
        devicesTotal: [2, 1, 1],
        devicesReporting: [1, 0, 0],
        socPct: [alpha.metrics.socPct, null, null],
        batteryPowerW: [alpha.metrics.batteryPowerW, bravo.metrics.batteryPowerW, 0],
        solarPowerW: [alpha.metrics.solarPowerW, bravo.metrics.solarPowerW, 0],
        gridPowerW: [alpha.metrics.gridPowerW, bravo.metrics.gridPowerW, 0],
        loadW: [alpha.metrics.loadW, bravo.metrics.loadW, 0],
        openAlerts: [3, 1, 0],
        criticalAlerts: [1, 1, 0],
        updatedAt: [T0 - 2000, T0 - 3000, null],
      },
    });
  });

  it('is an empty table without sites', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/sites/overview' });
    expect(response.json()).toMatchObject({ count: 0, columns: { id: [], socPct: [], updatedAt: [], openAlerts: [] } });
  });

  it('is its own route, not /sites/:id with the id overview, which still answers sites', async () => {
    await seed();
    const viewer = await t.createToken('viewer');
    const overview = await t.requestAs(viewer, { method: 'GET', url: '/api/v1/sites/overview' });
    expect(overview.statusCode).toBe(200);
    expect(overview.json().columns.id).toEqual(['alpha', 'bravo', 'charlie']);
    const site = await t.requestAs(viewer, { method: 'GET', url: '/api/v1/sites/alpha' });
    expect(site.statusCode).toBe(200);
    expect(site.json()).toMatchObject({ id: 'alpha', name: 'Alpha farm' });
    expect((await t.requestAs(viewer, { method: 'GET', url: '/api/v1/sites/overview/history' })).statusCode).toBe(404);
  });
});

describe('querySitesOverview with a set of sites (the stream\'s changed sites)', () => {
  const deps = () => ({ registry: t.store, live: t.live, alerts: t.store.alerts });

  it('answers only those sites, in id order, leaving out unknown ids', async () => {
    await seed();
    const columns = querySitesOverview(deps(), new Set(['charlie', 'nowhere', 'alpha']));
    expect(columns.id).toEqual(['alpha', 'charlie']);
    expect(columns.openAlerts).toEqual([3, 0]);
    expect(columns.devicesTotal).toEqual([2, 1]);
    expect(columns.updatedAt).toEqual([T0 - 2000, null]);
  });

  it('answers the same for a large set (read as the whole list) as for the same sites one by one', async () => {
    await seed();
    const many = new Set(['bravo', 'alpha', ...Array.from({ length: 200 }, (_, i) => `gone-${i}`)]);
    const large = querySitesOverview(deps(), many);
    expect(large).toEqual(querySitesOverview(deps(), new Set(['alpha', 'bravo'])));
    expect(large.id).toEqual(['alpha', 'bravo']);
    expect(querySitesOverview(deps(), new Set())).toMatchObject({ id: [], name: [] });
  });

  it('equals the columns of the route for all sites', async () => {
    await seed();
    const response = await t.request({ method: 'GET', url: '/api/v1/sites/overview' });
    expect(querySitesOverview(deps())).toEqual(response.json().columns);
  });
});
