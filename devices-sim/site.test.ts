import { describe, expect, it } from 'vitest';
import { DEVICE_TYPES, METRICS, findAbsurdValue } from '../protocol/index.ts';
import { planFleet } from './fleet-plan.ts';
import { createRandom } from './random.ts';
import { HOUR_MS, MINUTE_MS } from './sim-time.ts';
import { SimulatedSite, createSiteState, readSiteMetrics, stepSite, type SiteParams } from './site.ts';

const START = Date.UTC(2024, 5, 21);
const plan = planFleet({ sites: 8, seed: 2024 });
const paramsOf = (siteId: string): SiteParams => plan.siteParams.get(siteId)!;

describe('site', () => {
  it('balances the meter exactly: grid = load - solar - battery', () => {
    const site = new SimulatedSite(paramsOf('site-0001'), START);
    for (let t = START; t < START + 24 * HOUR_MS; t += 17 * MINUTE_MS) {
      site.advanceTo(t);
      const battery = site.readMetrics('battery');
      const solar = site.readMetrics('solar');
      const meter = site.readMetrics('meter');
      expect(meter.powerW).toBe(meter.loadW! - solar.powerW! - battery.powerW!);
    }
  });

  it('runs self-consumption: covers deficits, stores surplus, never trades with the grid', () => {
    for (const siteId of ['site-0001', 'site-0002', 'site-0003']) {
      const params = paramsOf(siteId);
      let state = createSiteState(params, START);
      let charged = false;
      let discharged = false;
      for (let t = START; t < START + 3 * 24 * HOUR_MS; t += 5 * MINUTE_MS) {
        state = stepSite(params, state, t, null);
        const deficitW = state.loadW - state.solar.powerW;
        const batteryW = state.battery.powerW;
        // Discharge only into a deficit, charge only from a surplus, never more than either.
        if (batteryW > 0) expect(batteryW).toBeLessThanOrEqual(deficitW + 1e-6);
        if (batteryW < 0) expect(batteryW).toBeGreaterThanOrEqual(deficitW - 1e-6);
        expect(state.battery.energyWh).toBeGreaterThanOrEqual((params.battery.capacityWh * params.battery.reservePct) / 100 - 1e-6);
        charged ||= batteryW < -100;
        discharged ||= batteryW > 100;
      }
      expect(charged).toBe(true);
      expect(discharged).toBe(true);
    }
  });

  it('follows a setpoint within limits, from the instant it is set', () => {
    const params = paramsOf('site-0004');
    const site = new SimulatedSite(params, START + 3 * HOUR_MS);
    site.advanceTo(START + 3 * HOUR_MS + 10 * MINUTE_MS);
    const energyBeforeWh = site.state.battery.energyWh;
    site.setSetpoint(-1_500, START + 3 * HOUR_MS + 10 * MINUTE_MS);
    site.advanceTo(START + 3 * HOUR_MS + 20 * MINUTE_MS);
    expect(site.state.battery.powerW).toBe(-1_500);
    expect(site.state.battery.energyWh - energyBeforeWh).toBeCloseTo(1_500 * (10 / 60) * 0.95, 6);
    site.setSetpoint(1_000_000, site.state.timeMs);
    site.advanceTo(site.state.timeMs + MINUTE_MS);
    expect(site.state.battery.powerW).toBe(params.battery.maxDischargeW);
    site.setSetpoint(null, site.state.timeMs);
    site.advanceTo(site.state.timeMs + MINUTE_MS);
    expect(site.state.battery.powerW).not.toBe(params.battery.maxDischargeW);
  });

  it('holds the reserve even under a discharge setpoint', () => {
    const params = paramsOf('site-0005');
    let state = createSiteState(params, START);
    state = stepSite(params, state, START + 2 * 24 * HOUR_MS, 1_000_000);
    expect((100 * state.battery.energyWh) / params.battery.capacityWh).toBeCloseTo(params.battery.reservePct, 6);
    expect(state.battery.powerW).toBe(0);
  });

  it('is deterministic for a seed', () => {
    const run = (seed: number): Record<string, number>[] => {
      const params = planFleet({ sites: 2, seed }).siteParams.get('site-0002')!;
      const site = new SimulatedSite(params, START);
      const readings: Record<string, number>[] = [];
      for (let t = START; t < START + 24 * HOUR_MS; t += 37 * MINUTE_MS) {
        site.advanceTo(t);
        for (const type of DEVICE_TYPES) readings.push(site.readMetrics(type));
      }
      return readings;
    };
    expect(run(77)).toEqual(run(77));
    expect(run(77)).not.toEqual(run(78));
  });

  it('keeps every value within the catalogue ranges at random instants of a simulated day', () => {
    const random = createRandom(99);
    for (const [siteId, params] of plan.siteParams) {
      let state = createSiteState(params, START);
      const instants = Array.from({ length: 40 }, () => START + random.next() * 24 * HOUR_MS).sort((a, b) => a - b);
      for (const instant of instants) {
        state = stepSite(params, state, instant, null);
        for (const type of DEVICE_TYPES) {
          const metrics = readSiteMetrics(params, state, type);
          expect(Object.keys(metrics).sort()).toEqual(Object.keys(METRICS[type]).sort());
          expect(findAbsurdValue(type, metrics), `${siteId} ${type} at ${new Date(instant).toISOString()}`).toBeUndefined();
        }
      }
    }
  });

  it('produces solar power at noon and none at night', () => {
    for (const params of plan.siteParams.values()) {
      const noon = stepSite(params, createSiteState(params, START + 11 * HOUR_MS), START + 13 * HOUR_MS, null);
      expect(readSiteMetrics(params, noon, 'solar').powerW).toBeGreaterThan(0);
      const night = stepSite(params, createSiteState(params, START + 22 * HOUR_MS), START + 26 * HOUR_MS, null);
      expect(readSiteMetrics(params, night, 'solar').powerW).toBe(0);
      expect(readSiteMetrics(params, night, 'solar').energyTodayWh).toBe(0);
    }
  });
});
