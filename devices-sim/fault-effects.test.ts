import { describe, expect, it } from 'vitest';
import { findAbsurdValue } from '../protocol/index.ts';
import { DeviceFaultState, OVERHEAT_CLIMB_MS, OVERHEAT_PLATEAU_C, SOC_JUMP_PCT, overheatTempC, socJumpOffsetPct } from './fault-effects.ts';
import { planSiteParams } from './fleet-plan.ts';
import { HOUR_MS, MINUTE_MS } from './sim-time.ts';
import { SimulatedSite, type SiteParams } from './site.ts';

const NOON = Date.UTC(2024, 5, 21, 12);
/** Wall clock of the tests: any instant works, the effects only look at differences. */
const WALL = 1_700_000_000_000;
const SPEED = 60;
const params = planSiteParams(7, { id: 'site-0001', region: 'south' });

/** A site and its faults as the fleet drives them: wall time → simulated time at SPEED. */
function rig(siteParams: SiteParams = params) {
  const site = new SimulatedSite(siteParams, NOON);
  const faults = new DeviceFaultState();
  const at = (wallMs: number) => {
    site.advanceTo(NOON + (wallMs - WALL) * SPEED);
    return site.readMetrics('battery');
  };
  return { site, faults, at, read: (wallMs: number) => faults.read(at(wallMs), wallMs) };
}

describe('overheat', () => {
  it('climbs from the current temperature to the plateau within OVERHEAT_CLIMB_MS, passes 60 °C and stays there, then returns to the physics', () => {
    const { faults, at, read } = rig();
    const fromC = at(WALL).tempC!;
    expect(fromC).toBeLessThan(50);
    expect(faults.add('overheat', 1, () => at(WALL), WALL)).toBe(true);
    expect(read(WALL).tempC).toBeCloseTo(fromC, 1);
    const halfway = fromC + (OVERHEAT_PLATEAU_C - fromC) / 2;
    expect(read(WALL + OVERHEAT_CLIMB_MS / 2).tempC).toBeCloseTo(Math.max(at(WALL + OVERHEAT_CLIMB_MS / 2).tempC!, halfway), 1);

    const secondsTo60 = OVERHEAT_CLIMB_MS / 1_000;
    expect(read(WALL + secondsTo60 * 1_000).tempC).toBeGreaterThan(60);
    // Stays above 60 °C, at the plateau, for as long as the fault is in force (here an hour of wall time).
    for (let s = secondsTo60; s <= 3_600; s += 30) {
      const tempC = read(WALL + s * 1_000).tempC!;
      expect(tempC).toBeGreaterThan(60);
      expect(tempC).toBeLessThanOrEqual(OVERHEAT_PLATEAU_C);
      expect(findAbsurdValue('battery', { tempC })).toBeUndefined();
    }
    expect(read(WALL + 3_600_000).tempC).toBe(OVERHEAT_PLATEAU_C);

    expect(faults.remove('overheat', 1)).toBe(true);
    const afterMs = WALL + 3_601_000;
    expect(read(afterMs)).toEqual(at(afterMs));
    expect(read(afterMs).tempC).toBeLessThan(50);
  });

  it('never reports cooler than the physics, and starts above the plateau stay put', () => {
    expect(overheatTempC(20, 0)).toBe(20);
    expect(overheatTempC(20, OVERHEAT_CLIMB_MS / 3)).toBe(35);
    expect(overheatTempC(20, OVERHEAT_CLIMB_MS)).toBe(OVERHEAT_PLATEAU_C);
    expect(overheatTempC(20, 10 * 60_000)).toBe(OVERHEAT_PLATEAU_C);
    expect(overheatTempC(70, 60_000)).toBe(70);
    const faults = new DeviceFaultState();
    faults.add('overheat', 1, () => ({ tempC: 20 }), WALL);
    expect(faults.read({ tempC: 40 }, WALL + 5_000).tempC).toBe(40);
  });

  it('touches only the temperature, and nothing of a device without one', () => {
    const { faults, at, read } = rig();
    faults.add('overheat', 1, () => at(WALL), WALL);
    const later = WALL + 120_000;
    const { tempC: _faulty, ...rest } = read(later);
    const { tempC: _physics, ...physicsRest } = at(later);
    expect(rest).toEqual(physicsRest);
    const meter = new DeviceFaultState();
    meter.add('overheat', 1, () => ({ powerW: 100 }), WALL);
    expect(meter.read({ powerW: 120, loadW: 300 }, WALL + 60_000)).toEqual({ powerW: 120, loadW: 300 });
  });
});

describe('frozen', () => {
  it('repeats every metric as it was when injected while the physics moves on, then reports the physics again', () => {
    const { site, faults, at, read } = rig();
    const stuck = read(WALL);
    faults.add('frozen', 1, () => at(WALL), WALL);
    const energyBefore = site.state.battery.energyWh;
    let physicsChanged = false;
    // Three simulated hours around noon: the battery charges, the temperature moves.
    for (let s = 1; s <= 180; s += 1) {
      const wallMs = WALL + s * 1_000;
      const physics = at(wallMs);
      physicsChanged ||= physics.energyWh !== stuck.energyWh || physics.tempC !== stuck.tempC;
      expect(faults.read(physics, wallMs)).toEqual(stuck);
    }
    expect(physicsChanged).toBe(true);
    expect(site.state.battery.energyWh).not.toBe(energyBefore);

    expect(faults.remove('frozen', 1)).toBe(true);
    const afterMs = WALL + 181_000;
    expect(read(afterMs)).toEqual(at(afterMs));
    expect(read(afterMs)).not.toEqual(stuck);
  });

  it('freezes what the device reports, other faults included, and later faults do not move it', () => {
    const { faults, at, read } = rig();
    faults.add('soc-jump', 1, () => at(WALL), WALL);
    const reported = read(WALL);
    faults.add('frozen', 2, () => at(WALL), WALL);
    faults.add('overheat', 3, () => at(WALL), WALL);
    expect(read(WALL + 60_000)).toEqual(reported);
    faults.remove('frozen', 2);
    expect(read(WALL + 60_000).tempC).toBeGreaterThan(60);
  });
});

describe('soc-jump', () => {
  it('offsets the reported state of charge by +35 points and leaves the physics alone', () => {
    const { site, faults, at, read } = rig();
    const twin = new SimulatedSite(params, NOON);
    const startSoc = at(WALL).socPct!;
    expect(startSoc).toBeLessThan(65);
    faults.add('soc-jump', 1, () => at(WALL), WALL);
    for (let s = 0; s <= 600; s += 20) {
      const wallMs = WALL + s * 1_000;
      const physics = at(wallMs);
      twin.advanceTo(NOON + (wallMs - WALL) * SPEED);
      // Physics untouched: the same state as a site without the fault, and energyWh still tells the truth.
      expect(site.state).toEqual(twin.state);
      const reported = faults.read(physics, wallMs);
      expect(reported.socPct).toBeCloseTo(Math.min(100, physics.socPct! + SOC_JUMP_PCT), 2);
      expect(reported.energyWh).toBe(physics.energyWh);
      expect(findAbsurdValue('battery', reported)).toBeUndefined();
    }
    expect(faults.remove('soc-jump', 1)).toBe(true);
    expect(read(WALL + 601_000)).toEqual(at(WALL + 601_000));
  });

  it('jumps down by 35 points from a full battery, and clamps at 100 on the way up', () => {
    expect(socJumpOffsetPct(100)).toBe(-SOC_JUMP_PCT);
    expect(socJumpOffsetPct(99.99)).toBe(SOC_JUMP_PCT);
    expect(socJumpOffsetPct(0)).toBe(SOC_JUMP_PCT);

    const full = rig({ ...params, initialSocPct: 100 });
    full.faults.add('soc-jump', 1, () => full.at(WALL), WALL);
    expect(full.read(WALL).socPct).toBe(65);

    const high = rig({ ...params, initialSocPct: 90 });
    high.faults.add('soc-jump', 1, () => high.at(WALL), WALL);
    expect(high.read(WALL).socPct).toBe(100);
    // The sign is chosen once, at injection: a battery charging to full still reads 100, not 65.
    expect(high.read(WALL + HOUR_MS / SPEED).socPct).toBe(100);
  });
});

describe('faults of one kind from several sources', () => {
  it('stay in force until the last of them ends', () => {
    const { faults, at } = rig();
    expect(faults.add('silent', 1, () => at(WALL), WALL)).toBe(true);
    expect(faults.add('silent', 2, () => at(WALL), WALL)).toBe(false);
    expect(faults.kinds).toEqual(['silent']);
    expect(faults.remove('silent', 1)).toBe(false);
    expect(faults.has('silent')).toBe(true);
    expect(faults.remove('silent', 3)).toBe(false);
    expect(faults.remove('silent', 2)).toBe(true);
    expect(faults.has('silent')).toBe(false);
  });

  it('keep the effect of the first: a second overheat does not restart the climb', () => {
    const { faults, at, read } = rig();
    faults.add('overheat', 1, () => at(WALL), WALL);
    const atMinute = read(WALL + MINUTE_MS).tempC!;
    faults.add('overheat', 2, () => at(WALL + MINUTE_MS), WALL + MINUTE_MS);
    faults.remove('overheat', 1);
    expect(read(WALL + MINUTE_MS).tempC).toBe(atMinute);
  });
});
