/**
 * One home energy site: a battery, a solar inverter and a household load
 * behind one grid meter, with the local self-consumption control a real
 * home battery runs. Pure functions plus a small mutable wrapper
 * (`SimulatedSite`) that the fleet steps as simulated time passes.
 *
 * Control (`SiteControl`): under local control (`selfConsumption`) the
 * battery covers the household's deficit (load above solar) by discharging
 * and stores surplus solar by charging, within its power limits, its
 * capacity and its backup reserve; it neither charges from the grid nor
 * exports to it. Commands change that: a setpoint (run at it, within the
 * same limits), `backup` (charge at the power limit, from surplus solar and
 * from the grid, until full; never discharge), `idle` (0 W); and a
 * curtailment caps the solar output.
 */
import type { BatteryMode, DeviceType } from '../protocol/index.ts';
import {
  createBatteryState,
  readBatteryMetrics,
  stepBattery,
  type BatteryParams,
  type BatteryState,
} from './battery.ts';
import { gridVoltageV, householdLoadW, readMeterMetrics, type GridParams, type LoadParams } from './meter.ts';
import { createSolarState, readSolarMetrics, stepSolar, type SolarParams, type SolarState } from './solar.ts';
import { MINUTE_MS, hourOfDay } from './sim-time.ts';

export interface ClimateParams {
  /** Daily mean outdoor temperature. */
  meanTempC: number;
  /** Half the difference between the afternoon high and the early-morning low. */
  dailySwingC: number;
}

/** Everything that makes one simulated site different from another; drawn from the fleet seed. */
export interface SiteParams {
  siteId: string;
  region: string;
  battery: BatteryParams;
  /** State of charge when the simulation starts. */
  initialSocPct: number;
  solar: SolarParams;
  load: LoadParams;
  grid: GridParams;
  climate: ClimateParams;
}

export interface SiteState {
  /** Simulated time of this state. */
  timeMs: number;
  battery: BatteryState;
  solar: SolarState;
  loadW: number;
}

/** What the battery is told to do: a mode of protocol/commands.ts, or a setpoint (W, positive = discharge). */
export type BatteryControl = { mode: BatteryMode } | { mode: 'setpoint'; powerW: number };

/** Everything that commands change on a site. */
export interface SiteControl {
  battery: BatteryControl;
  /** Most the solar inverter may produce (W), null when not curtailed. */
  curtailW: number | null;
}

/** Local control: self-consumption, no curtailment. What a site runs when no command does. */
export const LOCAL_CONTROL: SiteControl = Object.freeze({ battery: Object.freeze({ mode: 'selfConsumption' }), curtailW: null });

/** Longest physics step; longer spans are split so limits and control act often enough. */
export const MAX_STEP_MS = MINUTE_MS;
/** Most steps per advance; beyond it steps grow, so a huge speed-up stays affordable. */
const MAX_STEPS_PER_ADVANCE = 240;

/** Outdoor temperature: lowest around 03:00, highest around 15:00. */
export function ambientTempC(climate: ClimateParams, timeMs: number): number {
  return climate.meanTempC + climate.dailySwingC * Math.cos((2 * Math.PI * (hourOfDay(timeMs) - 15)) / 24);
}

/** Battery power that self-consumption control asks for: the household's deficit (positive) or surplus (negative). */
export function selfConsumptionRequestW(loadW: number, solarW: number): number {
  return loadW - solarW;
}

export function createSiteState(params: SiteParams, timeMs: number): SiteState {
  const ambientC = ambientTempC(params.climate, timeMs);
  return {
    timeMs,
    battery: createBatteryState(params.battery, params.initialSocPct, ambientC),
    solar: createSolarState(params.solar, timeMs, ambientC),
    loadW: householdLoadW(params.load, timeMs),
  };
}

/**
 * The battery power a control asks for (positive = discharge) given the
 * household's load and the (curtailed) solar output; the battery's limits
 * act afterwards. `backup` asks for the whole charge limit: what the sun
 * does not give comes from the grid.
 */
export function batteryRequestW(params: SiteParams, control: BatteryControl, loadW: number, solarW: number): number {
  switch (control.mode) {
    case 'selfConsumption':
      return selfConsumptionRequestW(loadW, solarW);
    case 'backup':
      return -params.battery.maxChargeW;
    case 'idle':
      return 0;
    case 'setpoint':
      return control.powerW;
  }
}

function stepSiteOnce(params: SiteParams, state: SiteState, toMs: number, control: SiteControl): SiteState {
  const ambientC = ambientTempC(params.climate, toMs);
  const solar = stepSolar(params.solar, state.solar, state.timeMs, toMs, ambientC, control.curtailW);
  const loadW = householdLoadW(params.load, toMs);
  const requestedW = batteryRequestW(params, control.battery, loadW, solar.powerW);
  const battery = stepBattery(params.battery, state.battery, requestedW, toMs - state.timeMs, ambientC);
  return { timeMs: toMs, battery, solar, loadW };
}

/**
 * Advances the site to simulated time `toMs` under `control`. A `toMs` at
 * or before the state's time returns the state unchanged.
 */
export function stepSite(params: SiteParams, state: SiteState, toMs: number, control: SiteControl = LOCAL_CONTROL): SiteState {
  const spanMs = toMs - state.timeMs;
  if (spanMs <= 0) return state;
  const stepMs = Math.max(MAX_STEP_MS, spanMs / MAX_STEPS_PER_ADVANCE);
  let current = state;
  while (current.timeMs < toMs) {
    current = stepSiteOnce(params, current, Math.min(toMs, current.timeMs + stepMs), control);
  }
  return current;
}

/**
 * The telemetry of one device of the site at the state's instant, with the
 * metric names and units of protocol/metrics.ts. The meter's grid power is
 * computed from the rounded powers the other devices report, so the balance
 * `grid = load - solar - battery` holds exactly in the data.
 */
export function readSiteMetrics(params: SiteParams, state: SiteState, type: DeviceType): Record<string, number> {
  switch (type) {
    case 'battery':
      return readBatteryMetrics(params.battery, state.battery);
    case 'solar':
      return readSolarMetrics(state.solar);
    case 'meter': {
      const loadW = Math.round(state.loadW);
      const solarW = Math.round(state.solar.powerW);
      const batteryW = Math.round(state.battery.powerW);
      const voltageV = gridVoltageV(params.grid, state.timeMs, loadW - solarW - batteryW);
      return readMeterMetrics(loadW, solarW, batteryW, voltageV);
    }
  }
}

/**
 * A site as the running fleet holds it: its parameters, its current state
 * and the control in force. Not shared across threads; the fleet's single
 * loop and the devices' command handlers (on the same event loop) are its
 * only writers.
 */
export class SimulatedSite {
  readonly params: SiteParams;
  private current: SiteState;
  private controlInForce: SiteControl = LOCAL_CONTROL;

  constructor(params: SiteParams, startTimeMs: number) {
    this.params = params;
    this.current = createSiteState(params, startTimeMs);
  }

  get state(): SiteState {
    return this.current;
  }

  /** The control in force. */
  get control(): SiteControl {
    return this.controlInForce;
  }

  advanceTo(timeMs: number): void {
    this.current = stepSite(this.params, this.current, timeMs, this.controlInForce);
  }

  /**
   * Changes part of the control (the battery's, or the curtailment) at
   * simulated time `timeMs`: the site first runs up to that instant under
   * the previous control, so a change never applies to the past. The
   * battery and the inverter are separate devices, each changing only its
   * own part.
   */
  setControl(change: Partial<SiteControl>, timeMs: number): void {
    this.advanceTo(timeMs);
    this.controlInForce = { ...this.controlInForce, ...change };
  }

  readMetrics(type: DeviceType): Record<string, number> {
    return readSiteMetrics(this.params, this.current, type);
  }
}
