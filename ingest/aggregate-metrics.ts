/**
 * How device metrics add up to site, region and fleet metrics. Power and
 * energy are summed; state of charge is derived from summed energy and
 * capacity, so a big battery weighs more than a small one.
 */
import type { AggregateMetrics, DeviceType } from '../protocol/index.ts';

type SummedMetric = Exclude<keyof AggregateMetrics, 'socPct'>;

/** Device metric → aggregate metric, per device type. */
export const AGGREGATED_METRICS: Readonly<Record<DeviceType, Readonly<Record<string, SummedMetric>>>> = {
  battery: { powerW: 'batteryPowerW', energyWh: 'energyWh', capacityWh: 'capacityWh' },
  solar: { powerW: 'solarPowerW' },
  meter: { powerW: 'gridPowerW', loadW: 'loadW' },
};

export const SUMMED_METRICS: readonly SummedMetric[] = [
  'batteryPowerW',
  'solarPowerW',
  'gridPowerW',
  'loadW',
  'energyWh',
  'capacityWh',
];

/** Adds device values into an aggregate; one instance per entity. */
export class MetricsSum {
  readonly sums: Record<SummedMetric, number> = {
    batteryPowerW: 0,
    solarPowerW: 0,
    gridPowerW: 0,
    loadW: 0,
    energyWh: 0,
    capacityWh: 0,
  };
  readonly devices = new Set<string>();

  add(deviceId: string, type: DeviceType, metrics: Readonly<Record<string, number>>): void {
    this.devices.add(deviceId);
    const mapping = AGGREGATED_METRICS[type];
    for (const name in mapping) {
      const value = metrics[name];
      if (value !== undefined) this.sums[mapping[name]!] += value;
    }
  }

  socPct(): number | null {
    return this.sums.capacityWh > 0 ? (100 * this.sums.energyWh) / this.sums.capacityWh : null;
  }

  toMetrics(): AggregateMetrics {
    return { ...this.sums, socPct: this.socPct() };
  }
}
