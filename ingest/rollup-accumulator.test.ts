import { describe, expect, it } from 'vitest';
import { RollupAccumulator, rollupsFromSamples } from './rollup-accumulator.ts';
import type { DeviceRef } from './types.ts';
import type { Rollup } from '../store/types.ts';

const T0 = 1_700_000_040_000; // a minute boundary
const battery: DeviceRef = { id: 'b1', type: 'battery', siteId: 's1' };
const battery2: DeviceRef = { id: 'b2', type: 'battery', siteId: 's2' };
const solar: DeviceRef = { id: 'p1', type: 'solar', siteId: 's1' };

function accumulator(startMs = T0 - 120_000) {
  return new RollupAccumulator({
    startMs,
    latenessMs: 5_000,
    regionOf: (site) => ({ s1: 'north', s2: 'north' })[site],
    deviceCounts: () => ({ fleet: 4, bySite: new Map([['s1', 3], ['s2', 1]]), byRegion: new Map([['north', 4]]) }),
  });
}

function find(rows: Rollup[], kind: string, id: string, metric: string): Rollup | undefined {
  return rows.find((r) => r.kind === kind && r.entityId === id && r.metric === metric);
}

describe('RollupAccumulator', () => {
  it('computes min, max, mean, last and count per device and metric', () => {
    const acc = accumulator();
    acc.add({ device: battery, ts: T0 + 1_000, metrics: { powerW: 100, socPct: 50 } });
    acc.add({ device: battery, ts: T0 + 30_000, metrics: { powerW: 300, socPct: 49 } });
    acc.add({ device: battery, ts: T0 + 20_000, metrics: { powerW: -200 } });
    const { rollups } = acc.close(T0 + 60_000 + 5_000);
    expect(find(rollups, 'device', 'b1', 'powerW')).toMatchObject({ bucketStartMs: T0, min: -200, max: 300, mean: 200 / 3, last: 300, count: 3 });
    expect(find(rollups, 'device', 'b1', 'socPct')).toMatchObject({ min: 49, max: 50, mean: 49.5, last: 49, count: 2 });
  });

  it('keeps a minute open until its lateness has passed', () => {
    const acc = accumulator();
    acc.add({ device: battery, ts: T0 + 59_000, metrics: { powerW: 1 } });
    expect(acc.close(T0 + 64_999).rollups).toEqual([]);
    acc.add({ device: battery, ts: T0 + 59_500, metrics: { powerW: 3 } });
    const closed = acc.close(T0 + 65_000).rollups;
    expect(find(closed, 'device', 'b1', 'powerW')).toMatchObject({ count: 2, mean: 2 });
  });

  it('aggregates sites, regions and the fleet with coverage', () => {
    const acc = accumulator();
    acc.add({ device: battery, ts: T0 + 1_000, metrics: { powerW: 1000, energyWh: 5000, capacityWh: 10_000 } });
    acc.add({ device: battery2, ts: T0 + 1_000, metrics: { powerW: -500, energyWh: 1000, capacityWh: 10_000 } });
    acc.add({ device: solar, ts: T0 + 2_000, metrics: { powerW: 2000 } });
    acc.add({ device: solar, ts: T0 + 3_000, metrics: { powerW: 4000 } });
    const { rollups } = acc.close(T0 + 70_000);
    expect(find(rollups, 'site', 's1', 'batteryPowerW')).toMatchObject({ mean: 1000, devicesReporting: 2, devicesTotal: 3 });
    expect(find(rollups, 'site', 's1', 'solarPowerW')).toMatchObject({ mean: 3000, min: 2000, max: 4000, last: 4000 });
    expect(find(rollups, 'region', 'north', 'batteryPowerW')).toMatchObject({ mean: 500, devicesReporting: 3, devicesTotal: 4 });
    expect(find(rollups, 'fleet', 'fleet', 'socPct')).toMatchObject({ mean: 30 });
    expect(find(rollups, 'site', 's2', 'solarPowerW')).toMatchObject({ mean: 0, devicesReporting: 1, devicesTotal: 1 });
  });

  it('lists samples of closed minutes as late instead of accumulating them', () => {
    const acc = accumulator();
    acc.add({ device: battery, ts: T0 + 1_000, metrics: { powerW: 1 } });
    acc.close(T0 + 70_000);
    acc.add({ device: battery, ts: T0 + 2_000, metrics: { powerW: 5 } });
    const { rollups, late } = acc.close(T0 + 71_000);
    expect(rollups).toEqual([]);
    expect(late).toEqual([{ deviceId: 'b1', bucketStartMs: T0 }]);
    expect(acc.close(T0 + 72_000).late).toEqual([]);
  });

  it('hands the minute the process started in back for repair, with who reported', () => {
    const acc = accumulator(T0 + 30_000);
    acc.add({ device: battery, ts: T0 + 40_000, metrics: { powerW: 1 } });
    acc.add({ device: solar, ts: T0 + 50_000, metrics: { powerW: 1 } });
    acc.add({ device: battery, ts: T0 + 61_000, metrics: { powerW: 2 } });
    const { rollups, late, repair } = acc.close(T0 + 130_000);
    expect(late).toEqual([]);
    expect(repair).toEqual([{ bucketStartMs: T0, devices: [battery, solar], known: [] }]);
    expect(rollups.filter((r) => r.bucketStartMs === T0)).toEqual([]);
    expect(find(rollups, 'device', 'b1', 'powerW')).toMatchObject({ bucketStartMs: T0 + 60_000, mean: 2 });
  });

  it('repairs from the store only devices that may have samples from before the start', () => {
    const acc = new RollupAccumulator({
      startMs: T0 + 30_000,
      latenessMs: 5_000,
      regionOf: () => 'north',
      deviceCounts: () => ({ fleet: 2, bySite: new Map([['s1', 2]]), byRegion: new Map([['north', 2]]) }),
      mayHaveEarlierSamples: (deviceId) => deviceId === 'b1',
    });
    acc.add({ device: battery, ts: T0 + 40_000, metrics: { powerW: 1 } });
    acc.add({ device: solar, ts: T0 + 50_000, metrics: { powerW: 7 } });
    acc.add({ device: solar, ts: T0 + 51_000, metrics: { powerW: 9 } });
    const { repair } = acc.close(T0 + 130_000);
    expect(repair).toHaveLength(1);
    expect(repair[0]!.devices).toEqual([battery]);
    expect(repair[0]!.known).toEqual([{ device: solar, rollups: [expect.objectContaining({ kind: 'device', entityId: 'p1', metric: 'powerW', mean: 8, count: 2 })] }]);
  });

  it('aggregates repaired device minutes like live ones', () => {
    const acc = accumulator();
    const rows = acc.aggregate(T0, [
      { device: battery, rollups: rollupsFromSamples(battery, T0, [{ device: battery, ts: T0, metrics: { powerW: 10 } }]) },
      { device: solar, rollups: rollupsFromSamples(solar, T0, [{ device: solar, ts: T0 + 5, metrics: { powerW: 30 } }]) },
    ]);
    expect(find(rows, 'site', 's1', 'batteryPowerW')).toMatchObject({ mean: 10, devicesReporting: 2, devicesTotal: 3 });
    expect(find(rows, 'fleet', 'fleet', 'solarPowerW')).toMatchObject({ mean: 30 });
  });

  it('flushes every open minute when closed with Infinity', () => {
    const acc = accumulator();
    acc.add({ device: battery, ts: T0 + 1_000, metrics: { powerW: 1 } });
    acc.add({ device: battery, ts: T0 + 61_000, metrics: { powerW: 2 } });
    const buckets = acc.close(Infinity).rollups.filter((r) => r.kind === 'device').map((r) => r.bucketStartMs);
    expect(buckets.sort()).toEqual([T0, T0 + 60_000]);
  });

  it('recomputes a device minute from raw samples, ignoring samples of other minutes', () => {
    const rows = rollupsFromSamples(battery, T0, [
      { device: battery, ts: T0 + 1, metrics: { powerW: 10 } },
      { device: battery, ts: T0 + 2, metrics: { powerW: 20 } },
      { device: battery, ts: T0 + 60_000, metrics: { powerW: 99 } },
    ]);
    expect(rows).toEqual([
      expect.objectContaining({ kind: 'device', entityId: 'b1', metric: 'powerW', min: 10, max: 20, mean: 15, last: 20, count: 2 }),
    ]);
  });
});
