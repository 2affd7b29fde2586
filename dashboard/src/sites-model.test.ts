import { describe, expect, it } from 'vitest';
import type { SitesOverviewColumns } from './api-types.ts';
import { SitesModel, coverageLevel } from './sites-model.ts';

function columnsOf(rows: Array<Partial<Record<keyof SitesOverviewColumns, unknown>> & { id: string }>): SitesOverviewColumns {
  const col = <T>(key: keyof SitesOverviewColumns, fallback: T) => rows.map((r) => (key in r ? r[key] : fallback)) as never;
  return {
    id: rows.map((r) => r.id),
    name: col('name', ''),
    region: col('region', 'north'),
    devicesTotal: col('devicesTotal', 3),
    devicesReporting: col('devicesReporting', 3),
    socPct: col('socPct', null),
    batteryPowerW: col('batteryPowerW', 0),
    solarPowerW: col('solarPowerW', 0),
    gridPowerW: col('gridPowerW', 0),
    loadW: col('loadW', 0),
    openAlerts: col('openAlerts', 0),
    criticalAlerts: col('criticalAlerts', 0),
    updatedAt: col('updatedAt', 1_000),
  };
}

function idsOf(model: SitesModel, rows: number[]): string[] {
  return rows.map((r) => model.columns.id[r] as string);
}

describe('SitesModel', () => {
  const model = () => {
    const m = new SitesModel();
    m.load(
      columnsOf([
        { id: 'site-0002', name: 'Harbour school', region: 'south', socPct: 40, batteryPowerW: 1200, devicesReporting: 1 },
        { id: 'site-0010', name: 'Mill lane', region: 'north', socPct: null, batteryPowerW: -300, devicesReporting: 0 },
        { id: 'site-0001', name: 'Depot', region: 'north', socPct: 90, batteryPowerW: 50 },
      ]),
    );
    return m;
  };

  it('sorts ids the way people count (site-2 before site-10)', () => {
    const m = model();
    expect(idsOf(m, m.view('', { key: 'id', dir: 'asc' }))).toEqual(['site-0001', 'site-0002', 'site-0010']);
    const n = new SitesModel();
    n.load(columnsOf([{ id: 'site-10' }, { id: 'site-2' }]));
    expect(idsOf(n, n.view('', { key: 'id', dir: 'asc' }))).toEqual(['site-2', 'site-10']);
  });

  it('sorts numbers both ways with missing values last', () => {
    const m = model();
    expect(idsOf(m, m.view('', { key: 'socPct', dir: 'asc' }))).toEqual(['site-0002', 'site-0001', 'site-0010']);
    expect(idsOf(m, m.view('', { key: 'socPct', dir: 'desc' }))).toEqual(['site-0001', 'site-0002', 'site-0010']);
    expect(idsOf(m, m.view('', { key: 'batteryPowerW', dir: 'desc' }))).toEqual(['site-0002', 'site-0001', 'site-0010']);
    expect(idsOf(m, m.view('', { key: 'coverage', dir: 'asc' }))).toEqual(['site-0010', 'site-0002', 'site-0001']);
    expect(idsOf(m, m.view('', { key: 'region', dir: 'asc' }))).toEqual(['site-0001', 'site-0010', 'site-0002']);
  });

  it('searches id, name and region, every term, any case', () => {
    const m = model();
    expect(idsOf(m, m.view('NORTH', { key: 'id', dir: 'asc' }))).toEqual(['site-0001', 'site-0010']);
    expect(idsOf(m, m.view('north mill', { key: 'id', dir: 'asc' }))).toEqual(['site-0010']);
    expect(idsOf(m, m.view('0002', { key: 'id', dir: 'asc' }))).toEqual(['site-0002']);
    expect(m.view('nowhere', { key: 'id', dir: 'asc' })).toEqual([]);
  });

  it('merges partial updates, newest wins, unknown sites are added', () => {
    const m = model();
    const before = m.version;
    expect(m.merge(columnsOf([{ id: 'site-0001', name: 'Depot', socPct: 55, updatedAt: 2_000 }]))).toBe(1);
    expect(m.columns.socPct[m.indexOf('site-0001') as number]).toBe(55);
    expect(m.version).toBeGreaterThan(before);
    // an older row (a slow fetch answered after a stream update) does not win
    expect(m.merge(columnsOf([{ id: 'site-0001', name: 'Depot', socPct: 90, updatedAt: 1_500 }]))).toBe(0);
    expect(m.columns.socPct[m.indexOf('site-0001') as number]).toBe(55);
    m.merge(columnsOf([{ id: 'site-0003', name: 'New', region: 'east' }]));
    expect(m.size).toBe(4);
    expect(idsOf(m, m.view('east', { key: 'id', dir: 'asc' }))).toEqual(['site-0003']);
  });

  it('takes columns that carry only some fields', () => {
    const m = model();
    m.merge({ id: ['site-0002'], batteryPowerW: [-5000], updatedAt: [3_000] });
    const row = m.indexOf('site-0002') as number;
    expect(m.columns.batteryPowerW[row]).toBe(-5000);
    expect(m.columns.name[row]).toBe('Harbour school');
  });

  it('sorts and filters 10,000 sites quickly', () => {
    const m = new SitesModel();
    const rows = Array.from({ length: 10_000 }, (_, i) => ({
      id: `site-${String(i).padStart(5, '0')}`,
      name: `Site ${i}`,
      region: ['north', 'south', 'east', 'west'][i % 4],
      batteryPowerW: Math.sin(i) * 5000,
      socPct: i % 7 === 0 ? null : (i * 37) % 100,
    }));
    m.load(columnsOf(rows));
    const started = performance.now();
    const sorted = m.view('', { key: 'batteryPowerW', dir: 'desc' });
    const filtered = m.view('west 12', { key: 'socPct', dir: 'asc' });
    expect(performance.now() - started).toBeLessThan(500);
    expect(sorted).toHaveLength(10_000);
    const power = m.columns.batteryPowerW;
    const ordered = sorted.every((row, i) => i === 0 || (power[sorted[i - 1] as number] as number) >= (power[row] as number));
    expect(ordered).toBe(true);
    expect(filtered.every((r) => m.columns.region[r] === 'west' && (m.columns.id[r] as string).includes('12'))).toBe(true);
  });

  it('counts reporting devices', () => {
    expect(model().reportingDevices()).toBe(4);
  });
});

describe('coverageLevel', () => {
  it('says full, partial, none or empty', () => {
    expect(coverageLevel(3, 3)).toBe('full');
    expect(coverageLevel(2, 3)).toBe('partial');
    expect(coverageLevel(0, 3)).toBe('none');
    expect(coverageLevel(0, 0)).toBe('empty');
  });
});
