/**
 * Solar inverter physics. Pure: output is a function of simulated time and
 * the site's parameters; the only state is the energy counter of the day.
 *
 * Output follows a sine-like curve from sunrise to sunset, times a clearness
 * factor from two layers of seeded noise (the weather of the day, and clouds
 * passing over about twenty minutes). It is zero at night.
 */
import { roundTo } from './battery.ts';
import { smoothNoise } from './random.ts';
import { DAY_MS, HOUR_MS, MINUTE_MS, dayNumber, hourOfDay, startOfDay } from './sim-time.ts';

export interface SolarParams {
  /** Peak DC power of the array (kWp × 1000). */
  peakW: number;
  /** Local (UTC) hour of sunrise and sunset, e.g. 6.5 and 19.25. */
  sunriseHour: number;
  sunsetHour: number;
  /** How much clouds can take away, in [0, 1): clearness stays within [1 - cloudiness, 1]. */
  cloudiness: number;
  /** Seeds of the daily weather and of passing clouds. */
  weatherSeed: number;
  cloudSeed: number;
  /** Inverter and wiring losses: AC output at full sun is peakW × this. */
  systemEfficiency: number;
  /** Inverter temperature rise above ambient at full output. */
  fullPowerRiseC: number;
}

export interface SolarState {
  /** Energy produced since local midnight of `day`. */
  energyTodayWh: number;
  /** Day number (days since the epoch) the counter belongs to. */
  day: number;
  powerW: number;
  tempC: number;
}

const PASSING_CLOUD_PERIOD_MS = 20 * MINUTE_MS;

/** Position of the sun as a fraction of its daily maximum, in [0, 1]; zero at night. */
export function daylightFactor(params: SolarParams, timeMs: number): number {
  const hour = hourOfDay(timeMs);
  if (hour <= params.sunriseHour || hour >= params.sunsetHour) return 0;
  const phase = (hour - params.sunriseHour) / (params.sunsetHour - params.sunriseHour);
  return Math.sin(Math.PI * phase) ** 1.3;
}

/** Fraction of clear-sky output that gets through the clouds, in [1 - cloudiness, 1]. */
export function clearness(params: SolarParams, timeMs: number): number {
  const weather = smoothNoise(params.weatherSeed, timeMs, DAY_MS);
  const clouds = smoothNoise(params.cloudSeed, timeMs, PASSING_CLOUD_PERIOD_MS);
  return 1 - params.cloudiness * (0.6 * weather + 0.4 * clouds);
}

/** AC output at an instant, in W. */
export function solarPowerW(params: SolarParams, timeMs: number): number {
  const daylight = daylightFactor(params, timeMs);
  if (daylight === 0) return 0;
  return params.peakW * params.systemEfficiency * daylight * clearness(params, timeMs);
}

export function createSolarState(params: SolarParams, timeMs: number, ambientC: number): SolarState {
  const powerW = solarPowerW(params, timeMs);
  // A simulation that starts during the day has already produced some energy
  // today; integrate it so the counter is plausible from the first sample.
  const midnightMs = startOfDay(timeMs);
  let energyTodayWh = 0;
  const stepMs = 5 * MINUTE_MS;
  for (let t = midnightMs; t < timeMs; t += stepMs) {
    const end = Math.min(timeMs, t + stepMs);
    energyTodayWh += ((solarPowerW(params, t) + solarPowerW(params, end)) / 2) * ((end - t) / HOUR_MS);
  }
  return { energyTodayWh, day: dayNumber(timeMs), powerW, tempC: inverterTempC(params, powerW, ambientC) };
}

/** AC output at an instant under a curtailment: what the sun gives, at most `capW` (none when null). */
export function curtailedPowerW(params: SolarParams, timeMs: number, capW: number | null): number {
  const powerW = solarPowerW(params, timeMs);
  return capW === null ? powerW : Math.min(powerW, Math.max(0, capW));
}

/**
 * Advances the energy counter from `fromMs` to `toMs` (trapezoid rule; the
 * caller keeps steps short), with the output capped at `capW` over the step
 * (a curtailment; none when null). Crossing local midnight resets the
 * counter and counts only the energy after midnight.
 */
export function stepSolar(
  params: SolarParams,
  state: SolarState,
  fromMs: number,
  toMs: number,
  ambientC: number,
  capW: number | null = null,
): SolarState {
  if (toMs <= fromMs) return state;
  const day = dayNumber(toMs);
  const newDay = day !== state.day;
  const startMs = newDay ? Math.max(fromMs, startOfDay(toMs)) : fromMs;
  const powerW = curtailedPowerW(params, toMs, capW);
  const energyWh = ((curtailedPowerW(params, startMs, capW) + powerW) / 2) * ((toMs - startMs) / HOUR_MS);
  return {
    energyTodayWh: (newDay ? 0 : state.energyTodayWh) + energyWh,
    day,
    powerW,
    tempC: inverterTempC(params, powerW, ambientC),
  };
}

function inverterTempC(params: SolarParams, powerW: number, ambientC: number): number {
  const load = params.peakW > 0 ? powerW / params.peakW : 0;
  return ambientC + params.fullPowerRiseC * load;
}

/** The inverter's telemetry, with metric names and units of protocol/metrics.ts. */
export function readSolarMetrics(state: SolarState): Record<string, number> {
  return {
    powerW: Math.round(state.powerW),
    energyTodayWh: roundTo(state.energyTodayWh, 1),
    tempC: roundTo(state.tempC, 1),
  };
}
