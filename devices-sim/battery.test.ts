import { describe, expect, it } from 'vitest';
import { findAbsurdValue } from '../protocol/index.ts';
import {
  batterySocPct,
  createBatteryState,
  limitBatteryPower,
  limitBatteryPowerWithCause,
  readBatteryMetrics,
  stepBattery,
  type BatteryParams,
  type BatteryState,
} from './battery.ts';
import { HOUR_MS, MINUTE_MS } from './sim-time.ts';

const params: BatteryParams = {
  capacityWh: 10_000,
  maxChargeW: 5_000,
  maxDischargeW: 5_000,
  efficiency: 0.95,
  reservePct: 20,
  heatingCPerW: 0.002,
  thermalTimeConstantMs: 30 * MINUTE_MS,
};
const AMBIENT_C = 20;

function run(state: BatteryState, requestedW: number, totalMs: number, stepMs: number): BatteryState {
  let current = state;
  for (let t = 0; t < totalMs; t += stepMs) current = stepBattery(params, current, requestedW, Math.min(stepMs, totalMs - t), AMBIENT_C);
  return current;
}

describe('battery', () => {
  it('stores 95 % of the energy it charges with', () => {
    const start = createBatteryState(params, 50, AMBIENT_C);
    const end = run(start, -1_000, HOUR_MS, MINUTE_MS);
    expect(end.energyWh - start.energyWh).toBeCloseTo(950, 6);
    expect(end.powerW).toBe(-1_000);
  });

  it('draws 1/0.95 of the energy it discharges from its cells', () => {
    const start = createBatteryState(params, 80, AMBIENT_C);
    const end = run(start, 1_000, HOUR_MS, 10 * MINUTE_MS);
    expect(start.energyWh - end.energyWh).toBeCloseTo(1_000 / 0.95, 6);
  });

  it('loses about 10 % over a full round trip', () => {
    const start = createBatteryState(params, 50, AMBIENT_C);
    const charged = run(start, -2_000, HOUR_MS, MINUTE_MS);
    // Discharge exactly the energy that went in on the AC side: 2 kWh.
    const back = run(charged, 2_000, HOUR_MS, MINUTE_MS);
    expect(start.energyWh - back.energyWh).toBeCloseTo(2_000 * (1 / 0.95 - 0.95), 6);
  });

  it('clamps power to its limits', () => {
    const state = createBatteryState(params, 50, AMBIENT_C);
    expect(limitBatteryPower(params, state, 50_000, MINUTE_MS)).toBe(5_000);
    expect(limitBatteryPower(params, state, -50_000, MINUTE_MS)).toBe(-5_000);
    expect(stepBattery(params, state, 9_000, MINUTE_MS, AMBIENT_C).powerW).toBe(5_000);
  });

  it('never discharges below its reserve, and then stops', () => {
    let state = createBatteryState(params, 30, AMBIENT_C);
    for (let i = 0; i < 120; i++) {
      state = stepBattery(params, state, 5_000, MINUTE_MS, AMBIENT_C);
      expect(batterySocPct(params, state)).toBeGreaterThanOrEqual(20 - 1e-9);
    }
    expect(batterySocPct(params, state)).toBeCloseTo(20, 9);
    expect(stepBattery(params, state, 5_000, MINUTE_MS, AMBIENT_C).powerW).toBe(0);
  });

  it('never charges above 100 %, and then stops', () => {
    let state = createBatteryState(params, 90, AMBIENT_C);
    for (let i = 0; i < 60; i++) {
      state = stepBattery(params, state, -5_000, MINUTE_MS, AMBIENT_C);
      expect(state.energyWh).toBeLessThanOrEqual(params.capacityWh);
    }
    expect(batterySocPct(params, state)).toBeCloseTo(100, 9);
    expect(stepBattery(params, state, -5_000, MINUTE_MS, AMBIENT_C).powerW).toBe(0);
  });

  it('may still charge when below its reserve', () => {
    const state = createBatteryState(params, 5, AMBIENT_C);
    expect(stepBattery(params, state, 1_000, MINUTE_MS, AMBIENT_C).powerW).toBe(0);
    expect(stepBattery(params, state, -1_000, MINUTE_MS, AMBIENT_C).powerW).toBe(-1_000);
  });

  it('warms with |power| and relaxes to ambient, independently of the step length', () => {
    const start = createBatteryState(params, 90, AMBIENT_C);
    const hot = run(start, 4_000, HOUR_MS, MINUTE_MS);
    expect(hot.tempC).toBeGreaterThan(AMBIENT_C + 5);
    expect(hot.tempC).toBeLessThan(AMBIENT_C + 0.002 * 4_000);
    expect(run(start, 4_000, HOUR_MS, HOUR_MS).tempC).toBeCloseTo(hot.tempC, 9);
    const cooled = run(hot, 0, 6 * HOUR_MS, 5 * MINUTE_MS);
    expect(cooled.tempC).toBeCloseTo(AMBIENT_C, 2);
  });

  it('reports catalogue metrics within their ranges', () => {
    const state = stepBattery(params, createBatteryState(params, 100, AMBIENT_C), 5_000, MINUTE_MS, AMBIENT_C);
    const metrics = readBatteryMetrics(params, state);
    expect(Object.keys(metrics).sort()).toEqual(['capacityWh', 'energyWh', 'maxChargeW', 'maxDischargeW', 'powerW', 'reservePct', 'socPct', 'tempC']);
    expect([metrics.maxChargeW, metrics.maxDischargeW]).toEqual([Math.round(params.maxChargeW), Math.round(params.maxDischargeW)]);
    expect(metrics.powerW).toBe(5_000);
    expect(metrics.capacityWh).toBe(10_000);
    expect(metrics.reservePct).toBe(20);
    expect(findAbsurdValue('battery', metrics)).toBeUndefined();
  });

  it('says which limit held the power back: the power limit, the reserve, a full battery, or none', () => {
    const half = createBatteryState(params, 50, AMBIENT_C);
    expect(limitBatteryPowerWithCause(params, half, 3_000, MINUTE_MS)).toEqual({ powerW: 3_000, limit: null });
    expect(limitBatteryPowerWithCause(params, half, 5_000, MINUTE_MS)).toEqual({ powerW: 5_000, limit: null });
    expect(limitBatteryPowerWithCause(params, half, 8_000, MINUTE_MS)).toEqual({ powerW: 5_000, limit: 'powerLimit' });
    expect(limitBatteryPowerWithCause(params, half, -8_000, MINUTE_MS)).toEqual({ powerW: -5_000, limit: 'powerLimit' });
    const atReserve = createBatteryState(params, 20, AMBIENT_C);
    expect(limitBatteryPowerWithCause(params, atReserve, 8_000, MINUTE_MS)).toEqual({ powerW: 0, limit: 'reserve' });
    const full = createBatteryState(params, 100, AMBIENT_C);
    expect(limitBatteryPowerWithCause(params, full, -1_000, MINUTE_MS)).toEqual({ powerW: 0, limit: 'full' });
    // Nearly at the reserve: some power, less than asked, for the reserve.
    const nearReserve = createBatteryState(params, 20.1, AMBIENT_C);
    const partial = limitBatteryPowerWithCause(params, nearReserve, 5_000, HOUR_MS);
    expect(partial.limit).toBe('reserve');
    expect(partial.powerW).toBeGreaterThan(0);
    expect(partial.powerW).toBeLessThan(5_000);
    // The state carries the limit of its last step.
    expect(stepBattery(params, atReserve, 2_000, MINUTE_MS, AMBIENT_C).limit).toBe('reserve');
    expect(stepBattery(params, half, 2_000, MINUTE_MS, AMBIENT_C).limit).toBeNull();
    expect(half.limit).toBeNull();
  });
});
