/**
 * Home battery physics. Pure: a state and a step function, no I/O, no clock.
 *
 * Sign convention (protocol): `powerW` is AC power at the battery's
 * terminals, positive when discharging, negative when charging. Conversion
 * losses apply each way: charging at P for t stores P·t·η, discharging at P
 * for t draws P·t/η from the cells.
 */
import { HOUR_MS } from './sim-time.ts';

export interface BatteryParams {
  /** Usable capacity. */
  capacityWh: number;
  maxChargeW: number;
  maxDischargeW: number;
  /** One-way conversion efficiency in (0, 1]; the round trip is its square. */
  efficiency: number;
  /** State of charge kept for backup: the battery never discharges below it. */
  reservePct: number;
  /** Steady-state temperature rise per watt of |power| above ambient. */
  heatingCPerW: number;
  /** Time constant of the temperature's relaxation towards its steady state. */
  thermalTimeConstantMs: number;
}

/**
 * What held the battery's power below what was asked: its power limit, the
 * backup reserve (empty as far as it may discharge), or a full battery.
 */
export type BatteryLimit = 'powerLimit' | 'reserve' | 'full';

export interface BatteryState {
  energyWh: number;
  /** Power over the last step, after limits. */
  powerW: number;
  /** What limited the power over the last step, null when it ran at what was asked. */
  limit: BatteryLimit | null;
  tempC: number;
}

export function createBatteryState(params: BatteryParams, socPct: number, tempC: number): BatteryState {
  const energyWh = (params.capacityWh * Math.min(100, Math.max(0, socPct))) / 100;
  return { energyWh, powerW: 0, limit: null, tempC };
}

/** Energy below which the battery does not discharge. */
export function reserveEnergyWh(params: BatteryParams): number {
  return (params.capacityWh * params.reservePct) / 100;
}

/**
 * The power the battery can actually deliver for `durationMs` when asked
 * for `requestedW`: clamped to its power limits, to the energy above the
 * reserve when discharging and to the room left when charging.
 */
export function limitBatteryPower(params: BatteryParams, state: BatteryState, requestedW: number, durationMs: number): number {
  return limitBatteryPowerWithCause(params, state, requestedW, durationMs).powerW;
}

/** `limitBatteryPower`, also saying which limit acted (the last one that lowered the power), null when none did. */
export function limitBatteryPowerWithCause(
  params: BatteryParams,
  state: BatteryState,
  requestedW: number,
  durationMs: number,
): { powerW: number; limit: BatteryLimit | null } {
  let powerW = Math.min(params.maxDischargeW, Math.max(-params.maxChargeW, requestedW));
  let limit: BatteryLimit | null = powerW === requestedW ? null : 'powerLimit';
  const hours = durationMs / HOUR_MS;
  if (hours > 0 && powerW > 0) {
    const availableWh = Math.max(0, state.energyWh - reserveEnergyWh(params));
    const energyLimitW = (availableWh * params.efficiency) / hours;
    if (energyLimitW < powerW) {
      powerW = energyLimitW;
      limit = 'reserve';
    }
  } else if (hours > 0 && powerW < 0) {
    const roomWh = Math.max(0, params.capacityWh - state.energyWh);
    const roomLimitW = -roomWh / params.efficiency / hours;
    if (roomLimitW > powerW) {
      powerW = roomLimitW;
      limit = 'full';
    }
  }
  // No negative zero in the state or on the wire.
  return { powerW: powerW === 0 ? 0 : powerW, limit };
}

/**
 * Runs the battery at `requestedW` (limited by `limitBatteryPower`) for
 * `durationMs` with the given ambient temperature, and returns the new state.
 */
export function stepBattery(
  params: BatteryParams,
  state: BatteryState,
  requestedW: number,
  durationMs: number,
  ambientC: number,
): BatteryState {
  if (durationMs <= 0) return state;
  const { powerW, limit } = limitBatteryPowerWithCause(params, state, requestedW, durationMs);
  const hours = durationMs / HOUR_MS;
  const cellEnergyDeltaWh = powerW > 0 ? (-powerW * hours) / params.efficiency : -powerW * hours * params.efficiency;
  const energyWh = Math.min(params.capacityWh, Math.max(0, state.energyWh + cellEnergyDeltaWh));
  // First-order thermal model, solved exactly over the step so that any step
  // length gives the same curve.
  const steadyC = ambientC + params.heatingCPerW * Math.abs(powerW);
  const decay = Math.exp(-durationMs / params.thermalTimeConstantMs);
  const tempC = steadyC + (state.tempC - steadyC) * decay;
  return { energyWh, powerW, limit, tempC };
}

export function batterySocPct(params: BatteryParams, state: BatteryState): number {
  return params.capacityWh > 0 ? (100 * state.energyWh) / params.capacityWh : 0;
}

/** The battery's telemetry, with metric names and units of protocol/metrics.ts. */
export function readBatteryMetrics(params: BatteryParams, state: BatteryState): Record<string, number> {
  return {
    powerW: Math.round(state.powerW),
    socPct: roundTo(batterySocPct(params, state), 2),
    energyWh: roundTo(state.energyWh, 1),
    capacityWh: Math.round(params.capacityWh),
    tempC: roundTo(state.tempC, 1),
    reservePct: roundTo(params.reservePct, 1),
    maxChargeW: Math.round(params.maxChargeW),
    maxDischargeW: Math.round(params.maxDischargeW),
  };
}

export function roundTo(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
