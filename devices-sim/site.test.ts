import { describe, expect, it } from 'vitest';
import { DEVICE_TYPES, METRICS, findAbsurdValue } from '../protocol/index.ts';
import { planFleet } from './fleet-plan.ts';
import { createRandom } from './random.ts';
import { HOUR_MS, MINUTE_MS } from './sim-time.ts';
import { solarPowerW } from './solar.ts';
import { LOCAL_CONTROL, SimulatedSite, createSiteState, readSiteMetrics, selfConsumptionRequestW, stepSite, type SiteControl, type SiteParams } from './site.ts';

const START = Date.UTC(2024, 5, 21);
const plan = planFleet({ sites: 8, seed: 2024 });
const paramsOf = (siteId: string): SiteParams => plan.siteParams.get(siteId)!;
const setpoint = (powerW: number): SiteControl => ({ battery: { mode: 'setpoint', powerW }, curtailW: null });
const mode = (battery: 'selfConsumption' | 'backup' | 'idle', curtailW: number | null = null): SiteControl => ({ battery: { mode: battery }, curtailW });

/** grid = load - solar - battery, exactly, in what the three devices report. */
function expectBalanced(params: SiteParams, state: ReturnType<typeof createSiteState>): void {
  const battery = readSiteMetrics(params, state, 'battery');
  const solar = readSiteMetrics(params, state, 'solar');
  const meter = readSiteMetrics(params, state, 'meter');
  expect(meter.powerW).toBe(meter.loadW! - solar.powerW! - battery.powerW!);
}

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
        state = stepSite(params, state, t, LOCAL_CONTROL);
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
    site.setControl(setpoint(-1_500), START + 3 * HOUR_MS + 10 * MINUTE_MS);
    site.advanceTo(START + 3 * HOUR_MS + 20 * MINUTE_MS);
    expect(site.state.battery.powerW).toBe(-1_500);
    expect(site.state.battery.energyWh - energyBeforeWh).toBeCloseTo(1_500 * (10 / 60) * 0.95, 6);
    site.setControl(setpoint(1_000_000), site.state.timeMs);
    site.advanceTo(site.state.timeMs + MINUTE_MS);
    expect(site.state.battery.powerW).toBe(params.battery.maxDischargeW);
    site.setControl(LOCAL_CONTROL, site.state.timeMs);
    site.advanceTo(site.state.timeMs + MINUTE_MS);
    expect(site.state.battery.powerW).not.toBe(params.battery.maxDischargeW);
  });

  it('holds the reserve even under a discharge setpoint', () => {
    const params = paramsOf('site-0005');
    let state = createSiteState(params, START);
    state = stepSite(params, state, START + 2 * 24 * HOUR_MS, setpoint(1_000_000));
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
        state = stepSite(params, state, instant, LOCAL_CONTROL);
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
      const noon = stepSite(params, createSiteState(params, START + 11 * HOUR_MS), START + 13 * HOUR_MS, LOCAL_CONTROL);
      expect(readSiteMetrics(params, noon, 'solar').powerW).toBeGreaterThan(0);
      const night = stepSite(params, createSiteState(params, START + 22 * HOUR_MS), START + 26 * HOUR_MS, LOCAL_CONTROL);
      expect(readSiteMetrics(params, night, 'solar').powerW).toBe(0);
      expect(readSiteMetrics(params, night, 'solar').energyTodayWh).toBe(0);
    }
  });
});

describe('site under commands', () => {
  it('backup: charges at the power limit from the grid when there is no sun, never discharges, and stops when full', () => {
    for (const siteId of ['site-0001', 'site-0002', 'site-0003']) {
      const params = paramsOf(siteId);
      const { maxChargeW } = params.battery;
      // Midnight: no sun, so every watt the battery takes comes from the grid.
      let state = stepSite(params, createSiteState(params, START), START + 10 * MINUTE_MS, mode('backup'));
      expect(state.solar.powerW).toBe(0);
      expect(state.battery.powerW).toBe(-maxChargeW);
      const meter = readSiteMetrics(params, state, 'meter');
      expect(meter.powerW).toBe(meter.loadW! + maxChargeW);
      for (let t = state.timeMs; t < START + 2 * 24 * HOUR_MS; t += 5 * MINUTE_MS) {
        state = stepSite(params, state, t, mode('backup'));
        expect(state.battery.powerW).toBeLessThanOrEqual(0);
        expect(state.battery.powerW).toBeGreaterThanOrEqual(-maxChargeW);
        expectBalanced(params, state);
      }
      expect(state.battery.energyWh).toBeCloseTo(params.battery.capacityWh, 6);
      expect(state.battery.powerW).toBe(0);
      expect(state.battery.limit).toBe('full');
    }
  });

  it('backup: at noon takes the solar surplus and tops it up from the grid to the power limit', () => {
    const params = paramsOf('site-0004');
    const site = new SimulatedSite({ ...params, initialSocPct: 30 }, START + 12 * HOUR_MS);
    site.setControl(mode('backup'), START + 12 * HOUR_MS);
    site.advanceTo(START + 12 * HOUR_MS + 5 * MINUTE_MS);
    expect(site.state.solar.powerW).toBeGreaterThan(0);
    expect(site.state.battery.powerW).toBe(-params.battery.maxChargeW);
    const meter = site.readMetrics('meter');
    expect(meter.powerW).toBe(meter.loadW! - site.readMetrics('solar').powerW! + params.battery.maxChargeW);
  });

  it('idle: 0 W whatever the sun and the load, the energy stands still', () => {
    const params = paramsOf('site-0005');
    let state = createSiteState(params, START);
    const energyWh = state.battery.energyWh;
    for (let t = START; t < START + 24 * HOUR_MS; t += 13 * MINUTE_MS) {
      state = stepSite(params, state, t, mode('idle'));
      expect(state.battery.powerW).toBe(0);
      expect(state.battery.energyWh).toBe(energyWh);
      const meter = readSiteMetrics(params, state, 'meter');
      expect(meter.powerW).toBe(meter.loadW! - readSiteMetrics(params, state, 'solar').powerW!);
    }
  });

  it('curtail: solar output never above the cap, the meter still balances exactly, and lifting restores the sun', () => {
    const capW = 700;
    for (const siteId of ['site-0001', 'site-0006']) {
      const params = paramsOf(siteId);
      let state = createSiteState(params, START);
      let capped = false;
      for (let t = START; t < START + 24 * HOUR_MS; t += 7 * MINUTE_MS) {
        state = stepSite(params, state, t, mode('selfConsumption', capW));
        expect(state.solar.powerW).toBeLessThanOrEqual(capW);
        expect(state.solar.powerW).toBe(Math.min(capW, solarPowerW(params.solar, t)));
        expectBalanced(params, state);
        // Self-consumption stores only the surplus the cap leaves.
        if (state.battery.powerW < 0) expect(state.battery.powerW).toBeGreaterThanOrEqual(selfConsumptionRequestW(state.loadW, state.solar.powerW) - 1e-6);
        capped ||= solarPowerW(params.solar, t) > capW;
      }
      expect(capped).toBe(true);
      // A whole day at most capW: the energy counter says so too.
      expect(state.solar.energyTodayWh).toBeLessThanOrEqual(capW * 24);
      const noon = START + 24 * HOUR_MS + 12 * HOUR_MS;
      const lifted = stepSite(params, stepSite(params, state, noon - MINUTE_MS, mode('selfConsumption', capW)), noon, LOCAL_CONTROL);
      expect(lifted.solar.powerW).toBe(solarPowerW(params.solar, noon));
      expect(lifted.solar.powerW).toBeGreaterThan(capW);
    }
  });

  it('each device changes only its own part of the control', () => {
    const site = new SimulatedSite(paramsOf('site-0007'), START);
    site.setControl({ curtailW: 300 }, START);
    site.setControl({ battery: { mode: 'idle' } }, START + MINUTE_MS);
    expect(site.control).toEqual({ battery: { mode: 'idle' }, curtailW: 300 });
    site.setControl({ curtailW: null }, START + 2 * MINUTE_MS);
    expect(site.control).toEqual({ battery: { mode: 'idle' }, curtailW: null });
  });

  it('falls back to self-consumption at the expiry: idle until then, local control from that instant on', () => {
    // Full enough that the reserve does not stop it within the window.
    const params = { ...paramsOf('site-0008'), initialSocPct: 95 };
    const start = START + 18 * HOUR_MS;
    const expiry = start + 30 * MINUTE_MS;
    const site = new SimulatedSite(params, start);
    site.setControl(mode('idle'), start);
    site.advanceTo(expiry - MINUTE_MS);
    const idleEnergyWh = site.state.battery.energyWh;
    expect(site.state.battery.powerW).toBe(0);
    // The command ends at its expiry: the site runs idle up to it, then locally.
    site.setControl(LOCAL_CONTROL, expiry);
    expect(site.state.timeMs).toBe(expiry);
    expect(site.state.battery.energyWh).toBe(idleEnergyWh);
    const twin = new SimulatedSite(params, start);
    twin.setControl(mode('idle'), start);
    twin.advanceTo(expiry);
    twin.setControl(LOCAL_CONTROL, expiry);
    for (let t = expiry + 5 * MINUTE_MS; t < expiry + 90 * MINUTE_MS; t += 10 * MINUTE_MS) {
      site.advanceTo(t);
      twin.advanceTo(t);
      const deficitW = site.state.loadW - site.state.solar.powerW;
      // Evening: a deficit the battery covers again, within its limit and reserve.
      expect(deficitW).toBeGreaterThan(0);
      expect(site.state.battery.powerW).toBeGreaterThan(0);
      expect(site.state.battery.powerW).toBeCloseTo(Math.min(deficitW, params.battery.maxDischargeW), 6);
    }
    expect(site.state).toEqual(twin.state);
    // An end noticed late (the site already ran past it) applies from the site's time, never to the past.
    site.setControl(mode('idle'), site.state.timeMs);
    const at = site.state.timeMs;
    site.setControl(LOCAL_CONTROL, at - 10 * MINUTE_MS);
    expect(site.state.timeMs).toBe(at);
  });
});
