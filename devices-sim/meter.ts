/**
 * Household load and the grid meter. Pure functions of simulated time and
 * the site's parameters.
 *
 * Load: a base load, a morning and an evening peak, smooth seeded noise, and
 * now and then an appliance (kettle, oven, heat pump) switched on for a slot.
 * Meter: grid power at the connection point, positive when importing:
 * `gridW = loadW - solarW - batteryW`.
 */
import { roundTo } from './battery.ts';
import { slotNoise, smoothNoise } from './random.ts';
import { MINUTE_MS, hourOfDay } from './sim-time.ts';

export interface LoadParams {
  baseW: number;
  morningPeakW: number;
  eveningPeakW: number;
  /** Amplitude of the smooth noise around the profile. */
  noiseW: number;
  noiseSeed: number;
  /** Power of an appliance that runs in some ten-minute slots. */
  applianceW: number;
  /** Share of slots with the appliance on, in [0, 1]. */
  applianceDuty: number;
  applianceSeed: number;
}

export interface GridParams {
  nominalV: number;
  /** Voltage drop per watt imported (and rise per watt exported) at the connection point. */
  impedanceVPerW: number;
  voltageSeed: number;
}

/** Lowest household load: standby consumption never stops. */
export const MIN_LOAD_W = 50;
const NOISE_PERIOD_MS = 5 * MINUTE_MS;
const APPLIANCE_SLOT_MS = 10 * MINUTE_MS;
const VOLTAGE_NOISE_PERIOD_MS = 2 * MINUTE_MS;

/** Gaussian bump around `centreHour`, measured around the clock (23:00 is close to 01:00). */
function dailyBump(hour: number, centreHour: number, widthHours: number): number {
  const raw = Math.abs(hour - centreHour);
  const distance = Math.min(raw, 24 - raw);
  return Math.exp(-(distance * distance) / (2 * widthHours * widthHours));
}

/** Household consumption at an instant, in W; never below MIN_LOAD_W. */
export function householdLoadW(params: LoadParams, timeMs: number): number {
  const hour = hourOfDay(timeMs);
  const profileW =
    params.baseW + params.morningPeakW * dailyBump(hour, 7.5, 1) + params.eveningPeakW * dailyBump(hour, 19, 1.5);
  const noiseW = params.noiseW * (2 * smoothNoise(params.noiseSeed, timeMs, NOISE_PERIOD_MS) - 1);
  const applianceW = slotNoise(params.applianceSeed, timeMs, APPLIANCE_SLOT_MS) < params.applianceDuty ? params.applianceW : 0;
  return Math.max(MIN_LOAD_W, profileW + noiseW + applianceW);
}

/** Grid power at the connection point: positive when importing. */
export function gridPowerW(loadW: number, solarW: number, batteryW: number): number {
  return loadW - solarW - batteryW;
}

/** Voltage at the connection point: nominal, a little noise, lower when importing, higher when exporting. */
export function gridVoltageV(params: GridParams, timeMs: number, gridW: number): number {
  const noiseV = 3 * (2 * smoothNoise(params.voltageSeed, timeMs, VOLTAGE_NOISE_PERIOD_MS) - 1);
  const voltageV = params.nominalV + noiseV - params.impedanceVPerW * gridW;
  // Keep within the ±10 % band of EN 50160, as a real distribution grid does.
  return Math.min(params.nominalV * 1.1, Math.max(params.nominalV * 0.9, voltageV));
}

/**
 * The meter's telemetry, with metric names and units of protocol/metrics.ts.
 * Takes the load, solar and battery powers as reported (rounded), so the
 * balance holds exactly on the wire.
 */
export function readMeterMetrics(loadW: number, solarW: number, batteryW: number, voltageV: number): Record<string, number> {
  return {
    powerW: gridPowerW(loadW, solarW, batteryW),
    loadW,
    voltageV: roundTo(voltageV, 1),
  };
}
