import { describe, expect, it } from 'vitest';
import { findAbsurdValue } from '../protocol/index.ts';
import { MIN_LOAD_W, gridPowerW, gridVoltageV, householdLoadW, readMeterMetrics, type GridParams, type LoadParams } from './meter.ts';
import { HOUR_MS, MINUTE_MS } from './sim-time.ts';

const load: LoadParams = {
  baseW: 300,
  morningPeakW: 1_200,
  eveningPeakW: 2_500,
  noiseW: 200,
  noiseSeed: 5,
  applianceW: 2_000,
  applianceDuty: 0.08,
  applianceSeed: 6,
};
const grid: GridParams = { nominalV: 230, impedanceVPerW: 0.001, voltageSeed: 7 };
const DAY_START = Date.UTC(2024, 0, 15);

function meanLoadW(fromHour: number, toHour: number, days: number): number {
  let sum = 0;
  let count = 0;
  for (let day = 0; day < days; day++) {
    for (let hour = fromHour; hour < toHour; hour += 1 / 12) {
      sum += householdLoadW(load, DAY_START + day * 24 * HOUR_MS + hour * HOUR_MS);
      count++;
    }
  }
  return sum / count;
}

describe('household load and meter', () => {
  it('never drops below standby', () => {
    const bare: LoadParams = { ...load, baseW: 0, noiseW: 500 };
    for (let t = DAY_START; t < DAY_START + 2 * 24 * HOUR_MS; t += 3 * MINUTE_MS) {
      expect(householdLoadW(bare, t)).toBeGreaterThanOrEqual(MIN_LOAD_W);
    }
  });

  it('peaks in the morning and the evening', () => {
    const nightW = meanLoadW(1, 4, 7);
    expect(meanLoadW(7, 8.5, 7)).toBeGreaterThan(nightW + 600);
    expect(meanLoadW(18, 20, 7)).toBeGreaterThan(nightW + 1_500);
  });

  it('balances the grid: grid = load - solar - battery', () => {
    expect(gridPowerW(2_000, 3_000, 500)).toBe(-1_500);
    expect(gridPowerW(2_000, 0, -1_000)).toBe(3_000);
    const metrics = readMeterMetrics(1_234, 4_000, -2_000, 231.27);
    expect(metrics).toEqual({ powerW: -766, loadW: 1_234, voltageV: 231.3 });
    expect(findAbsurdValue('meter', metrics)).toBeUndefined();
  });

  it('lowers the voltage when importing and raises it when exporting, within ±10 %', () => {
    const t = DAY_START + 12 * HOUR_MS;
    expect(gridVoltageV(grid, t, 5_000)).toBeLessThan(gridVoltageV(grid, t, -5_000));
    expect(gridVoltageV(grid, t, 1_000_000)).toBeCloseTo(207, 9);
    expect(gridVoltageV(grid, t, -1_000_000)).toBeCloseTo(253, 9);
  });
});
