/**
 * The figures of a live aggregate (fleet, region or site): battery, solar,
 * grid, load, state of charge and coverage, each with its unit, its sign
 * spelled out, and `data-testid="<prefix>-<metric>"` with the raw value.
 */
import type { AggregateMetricName, AggregateSnapshot } from './api-types.ts';
import { formatEnergy, formatPercent, formatPower, joinUnit } from './format.ts';
import { CoverageBar, Num, Tile } from './ui.tsx';

export const POWER_METRICS = ['batteryPowerW', 'solarPowerW', 'gridPowerW', 'loadW'] as const satisfies readonly AggregateMetricName[];

export function batteryHint(w: number | null | undefined): string {
  if (typeof w !== 'number' || Math.abs(w) < 1) return 'idle';
  return w > 0 ? 'discharging to the grid' : 'charging';
}

export function gridHint(w: number | null | undefined): string {
  if (typeof w !== 'number' || Math.abs(w) < 1) return 'balanced';
  return w > 0 ? 'importing from the grid' : 'exporting to the grid';
}

export function AggregateFigures({
  snapshot,
  prefix,
  size,
}: {
  snapshot: AggregateSnapshot | null;
  /** testid prefix: `fleet-total`, `region-<id>`, `site-<id>`. */
  prefix: string;
  size: 'lg' | 'md' | 'sm';
}) {
  const m = snapshot?.metrics;
  const coverage = snapshot?.coverage;
  return (
    <div class={`figures figures-${size}`}>
      <Tile label="Battery" tone="battery" size={size} hint={<span title="+ discharging to the grid, − charging">{batteryHint(m?.batteryPowerW)}</span>}>
        <Num f={formatPower(m?.batteryPowerW, { signed: true })} value={m?.batteryPowerW} testid={`${prefix}-batteryPowerW`} />
      </Tile>
      <Tile label="Solar" tone="solar" size={size} hint="production">
        <Num f={formatPower(m?.solarPowerW)} value={m?.solarPowerW} testid={`${prefix}-solarPowerW`} />
      </Tile>
      <Tile label="Grid" tone="grid" size={size} hint={<span title="+ importing from the grid, − exporting">{gridHint(m?.gridPowerW)}</span>}>
        <Num f={formatPower(m?.gridPowerW, { signed: true })} value={m?.gridPowerW} testid={`${prefix}-gridPowerW`} />
      </Tile>
      <Tile label="Load" tone="load" size={size} hint="consumption">
        <Num f={formatPower(m?.loadW)} value={m?.loadW} testid={`${prefix}-loadW`} />
      </Tile>
      <Tile
        label={size === 'sm' ? 'SoC' : 'State of charge'}
        tone="soc"
        size={size}
        hint={m ? `${joinUnit(formatEnergy(m.energyWh))} of ${joinUnit(formatEnergy(m.capacityWh))}` : undefined}
      >
        <Num f={formatPercent(m?.socPct)} value={m?.socPct} testid={`${prefix}-socPct`} />
      </Tile>
      <Tile label="Coverage" tone="coverage" size={size} hint="devices reporting">
        <CoverageBar reporting={coverage?.devicesReporting ?? 0} total={coverage?.devicesTotal ?? 0} testid={`${prefix}-coverage`} />
      </Tile>
    </div>
  );
}
