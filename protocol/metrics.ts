/**
 * Metric catalogue: names, units and plausible ranges per device type.
 * Units are part of the names (W, Wh, Pct, C). Values outside a range are
 * "absurd" and the message is dead-lettered. Metrics not in the catalogue are
 * accepted if they are finite numbers, so firmware can add metrics before
 * the platform knows them.
 */

export const DEVICE_TYPES = ['battery', 'solar', 'meter'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

export interface MetricSpec {
  unit: string;
  min: number;
  max: number;
  description: string;
}

export const METRICS: Readonly<Record<DeviceType, Readonly<Record<string, MetricSpec>>>> = {
  battery: {
    powerW: { unit: 'W', min: -100_000, max: 100_000, description: 'positive when discharging, negative when charging' },
    socPct: { unit: '%', min: 0, max: 100, description: 'state of charge' },
    energyWh: { unit: 'Wh', min: 0, max: 1_000_000, description: 'energy stored now' },
    capacityWh: { unit: 'Wh', min: 0, max: 1_000_000, description: 'usable capacity' },
    tempC: { unit: '°C', min: -40, max: 120, description: 'cell temperature' },
    reservePct: { unit: '%', min: 0, max: 100, description: 'state of charge kept for backup' },
    maxChargeW: { unit: 'W', min: 0, max: 100_000, description: 'power limit when charging' },
    maxDischargeW: { unit: 'W', min: 0, max: 100_000, description: 'power limit when discharging' },
  },
  solar: {
    powerW: { unit: 'W', min: -1_000, max: 100_000, description: 'AC output, positive when producing' },
    energyTodayWh: { unit: 'Wh', min: 0, max: 10_000_000, description: 'energy produced since local midnight' },
    tempC: { unit: '°C', min: -40, max: 120, description: 'inverter temperature' },
  },
  meter: {
    powerW: { unit: 'W', min: -200_000, max: 200_000, description: 'grid power at the connection point, positive when importing from the grid' },
    loadW: { unit: 'W', min: 0, max: 200_000, description: 'household consumption' },
    voltageV: { unit: 'V', min: 0, max: 500, description: 'grid voltage' },
  },
};

/** Metric names: camelCase ending in a unit, at most 64 characters. */
export const METRIC_NAME_PATTERN = '^[a-z][A-Za-z0-9]{0,63}$';
export const MAX_METRICS_PER_SAMPLE = 64;
/** Numbers outside this magnitude are absurd for any metric, known or not. */
export const MAX_ABS_METRIC_VALUE = 1e12;

export function isDeviceType(value: string): value is DeviceType {
  return (DEVICE_TYPES as readonly string[]).includes(value);
}
