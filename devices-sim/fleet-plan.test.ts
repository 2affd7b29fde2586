import { describe, expect, it } from 'vitest';
import { SimError } from './errors.ts';
import { DEFAULT_REGIONS, planFleet, planSiteParams } from './fleet-plan.ts';

describe('planFleet', () => {
  it('names sites and devices readably, three devices per site', () => {
    const plan = planFleet({ sites: 3, seed: 1 });
    expect(plan.sites.map((site) => site.id)).toEqual(['site-0001', 'site-0002', 'site-0003']);
    expect(plan.devices.slice(0, 3)).toEqual([
      { id: 'site-0001-battery', type: 'battery', siteId: 'site-0001' },
      { id: 'site-0001-solar', type: 'solar', siteId: 'site-0001' },
      { id: 'site-0001-meter', type: 'meter', siteId: 'site-0001' },
    ]);
    expect(plan.devices).toHaveLength(9);
    expect(plan.sites[0]!.name).toBe('Site 0001 (north)');
  });

  it('spreads sites over at least three default regions, round robin', () => {
    expect(DEFAULT_REGIONS.length).toBeGreaterThanOrEqual(3);
    const plan = planFleet({ sites: 10, seed: 1 });
    expect(new Set(plan.sites.map((site) => site.region))).toEqual(new Set(DEFAULT_REGIONS));
    expect(plan.sites.map((site) => site.region).slice(0, 5)).toEqual(['north', 'south', 'east', 'west', 'north']);
    const custom = planFleet({ sites: 4, seed: 1, regions: ['a', 'b'] });
    expect(custom.sites.map((site) => site.region)).toEqual(['a', 'b', 'a', 'b']);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    expect(planFleet({ sites: 20, seed: 42 })).toEqual(planFleet({ sites: 20, seed: 42 }));
    const a = planFleet({ sites: 1, seed: 42 }).siteParams.get('site-0001');
    const b = planFleet({ sites: 1, seed: 43 }).siteParams.get('site-0001');
    expect(a).not.toEqual(b);
  });

  it('gives a site the same parameters whatever the fleet size', () => {
    const small = planFleet({ sites: 1, seed: 9 }).siteParams.get('site-0001');
    const large = planFleet({ sites: 50, seed: 9 }).siteParams.get('site-0001');
    expect(small).toEqual(large);
    expect(planSiteParams(9, { id: 'site-0001', region: 'north' })).toEqual(small);
  });

  it('draws physical parameters within the documented ranges', () => {
    const plan = planFleet({ sites: 200, seed: 3 });
    for (const params of plan.siteParams.values()) {
      expect(params.battery.capacityWh).toBeGreaterThanOrEqual(5_000);
      expect(params.battery.capacityWh).toBeLessThanOrEqual(20_000);
      expect(params.battery.maxDischargeW).toBeGreaterThanOrEqual(3_000);
      expect(params.battery.maxDischargeW).toBeLessThanOrEqual(10_000);
      expect(params.solar.peakW).toBeGreaterThanOrEqual(3_000);
      expect(params.solar.peakW).toBeLessThanOrEqual(12_000);
      expect(params.initialSocPct).toBeGreaterThan(params.battery.reservePct);
      expect(params.solar.sunsetHour - params.solar.sunriseHour).toBeGreaterThan(10);
    }
    const north = plan.siteParams.get('site-0001')!;
    const south = plan.siteParams.get('site-0002')!;
    expect(south.solar.sunsetHour - south.solar.sunriseHour).toBeGreaterThan(north.solar.sunsetHour - north.solar.sunriseHour);
  });

  it('reports every invalid option at once', () => {
    try {
      planFleet({ sites: -1, seed: 1.5, regions: [] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SimError);
      expect((err as SimError).code).toBe('invalid-options');
      expect((err as SimError).message).toMatch(/sites.*seed.*regions/);
    }
  });
});
