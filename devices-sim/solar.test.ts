import { describe, expect, it } from 'vitest';
import { findAbsurdValue } from '../protocol/index.ts';
import { HOUR_MS, MINUTE_MS } from './sim-time.ts';
import { clearness, createSolarState, curtailedPowerW, readSolarMetrics, solarPowerW, stepSolar, type SolarParams, type SolarState } from './solar.ts';

const params: SolarParams = {
  peakW: 8_000,
  sunriseHour: 6.5,
  sunsetHour: 19.5,
  cloudiness: 0.5,
  weatherSeed: 11,
  cloudSeed: 12,
  systemEfficiency: 0.85,
  fullPowerRiseC: 20,
};
const DAY_START = Date.UTC(2024, 5, 21);
const at = (hour: number, dayOffset = 0): number => DAY_START + dayOffset * 24 * HOUR_MS + hour * HOUR_MS;

function run(state: SolarState, fromMs: number, toMs: number, stepMs: number): SolarState {
  let current = state;
  for (let t = fromMs; t < toMs; t += stepMs) current = stepSolar(params, current, t, Math.min(toMs, t + stepMs), 20);
  return current;
}

describe('solar', () => {
  it('produces nothing at night', () => {
    for (const hour of [0, 2, 5.9, 6.5, 19.5, 21, 23.99]) expect(solarPowerW(params, at(hour))).toBe(0);
  });

  it('produces at noon, within the array peak', () => {
    const noonW = solarPowerW(params, at(13));
    expect(noonW).toBeGreaterThan(params.peakW * params.systemEfficiency * (1 - params.cloudiness) * 0.9);
    expect(noonW).toBeLessThanOrEqual(params.peakW);
    expect(solarPowerW(params, at(13))).toBeGreaterThan(solarPowerW(params, at(7.5)));
  });

  it('keeps clearness within [1 - cloudiness, 1] and changes it slowly', () => {
    for (let t = at(0); t < at(0, 3); t += 7 * MINUTE_MS) {
      const value = clearness(params, t);
      expect(value).toBeGreaterThanOrEqual(1 - params.cloudiness);
      expect(value).toBeLessThanOrEqual(1);
      expect(Math.abs(clearness(params, t + MINUTE_MS) - value)).toBeLessThan(0.1);
    }
  });

  it('counts the energy of the day and resets it at local midnight', () => {
    const start = createSolarState(params, at(0), 20);
    expect(start.energyTodayWh).toBe(0);
    const evening = run(start, at(0), at(23.5), MINUTE_MS);
    expect(evening.energyTodayWh).toBeGreaterThan(5_000);
    expect(evening.energyTodayWh).toBeLessThan(params.peakW * 13);
    const nextMorning = run(evening, at(23.5), at(9, 1), MINUTE_MS);
    expect(nextMorning.day).toBe(evening.day + 1);
    expect(nextMorning.energyTodayWh).toBeGreaterThan(0);
    expect(nextMorning.energyTodayWh).toBeLessThan(evening.energyTodayWh);
    // Only the morning's energy: the same as a counter started at midnight.
    const fromMidnight = run(createSolarState(params, at(0, 1), 20), at(0, 1), at(9, 1), MINUTE_MS);
    expect(nextMorning.energyTodayWh).toBeCloseTo(fromMidnight.energyTodayWh, 6);
  });

  it('resets even when one step jumps over midnight', () => {
    const evening = run(createSolarState(params, at(0), 20), at(0), at(20), MINUTE_MS);
    const jumped = stepSolar(params, evening, at(20), at(1, 1), 20);
    expect(jumped.energyTodayWh).toBe(0);
  });

  it('starts mid-day with the energy already produced that day', () => {
    const started = createSolarState(params, at(15), 20);
    const stepped = run(createSolarState(params, at(0), 20), at(0), at(15), MINUTE_MS);
    expect(started.energyTodayWh).toBeGreaterThan(0);
    expect(Math.abs(started.energyTodayWh - stepped.energyTodayWh) / stepped.energyTodayWh).toBeLessThan(0.01);
  });

  it('reports catalogue metrics within their ranges', () => {
    const state = stepSolar(params, createSolarState(params, at(12), 35), at(12), at(12) + MINUTE_MS, 35);
    const metrics = readSolarMetrics(state);
    expect(Object.keys(metrics).sort()).toEqual(['energyTodayWh', 'powerW', 'tempC']);
    expect(metrics.tempC).toBeGreaterThan(35);
    expect(findAbsurdValue('solar', metrics)).toBeUndefined();
  });

  it('curtailed: produces at most the cap, counts only what it produced, and is untouched without a cap', () => {
    expect(curtailedPowerW(params, at(13), null)).toBe(solarPowerW(params, at(13)));
    expect(curtailedPowerW(params, at(13), 1_000)).toBe(1_000);
    expect(curtailedPowerW(params, at(13), 0)).toBe(0);
    expect(curtailedPowerW(params, at(2), 1_000)).toBe(0);
    let free = createSolarState(params, at(8), 20);
    let capped = free;
    for (let t = at(8); t < at(16); t += MINUTE_MS) {
      free = stepSolar(params, free, t, t + MINUTE_MS, 20);
      capped = stepSolar(params, capped, t, t + MINUTE_MS, 20, 1_000);
      expect(capped.powerW).toBeLessThanOrEqual(1_000);
      expect(capped.tempC).toBeLessThanOrEqual(free.tempC);
    }
    const producedWh = (state: SolarState): number => state.energyTodayWh - createSolarState(params, at(8), 20).energyTodayWh;
    expect(producedWh(capped)).toBeCloseTo(8 * 1_000, -1);
    expect(producedWh(free)).toBeGreaterThan(producedWh(capped));
    expect(stepSolar(params, free, at(16), at(16) + MINUTE_MS, 20, null)).toEqual(stepSolar(params, free, at(16), at(16) + MINUTE_MS, 20));
  });
});
