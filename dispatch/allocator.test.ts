/**
 * The allocation: every limit a battery has (power, reserve, room to
 * charge, energy over the window), who is left out and why, exact sums in
 * whole watts, and properties over random fleets and targets.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allocate,
  apportion,
  explainAllocation,
  formatDurationMs,
  formatPowerW,
  headroom,
  spreadProportionally,
  usableEnergyWh,
  type Allocation,
  type BatteryView,
} from './allocator.ts';

const HALF_HOUR_MS = 30 * 60_000;
const TWO_HOURS_MS = 2 * 3_600_000;

/** 5 kW / 10 kWh, 8 kWh stored, 20 % reserve: 6 kWh above the reserve, 5.7 kWh of it reach the grid. */
function battery(deviceId: string, overrides: Partial<BatteryView> = {}): BatteryView {
  return {
    deviceId,
    siteId: `site-${deviceId}`,
    presence: 'online',
    maxPowerW: 5_000,
    capacityWh: 10_000,
    energyWh: 8_000,
    reservePct: 20,
    measuredPowerW: null,
    ...overrides,
  };
}

const sumW = (result: Allocation): number => result.setpoints.reduce((sum, s) => sum + s.powerW, 0);
const powers = (result: Allocation): Record<string, number> => Object.fromEntries(result.setpoints.map((s) => [s.deviceId, s.powerW]));

describe('headroom', () => {
  it('is the power limit when the energy lasts the window', () => {
    expect(headroom(battery('a'), 1, HALF_HOUR_MS)).toBe(5_000);
    expect(headroom(battery('a', { energyWh: 5_000 }), -1, HALF_HOUR_MS)).toBe(5_000);
  });

  it('is the energy above the reserve over the window when that is less', () => {
    // 6 kWh above the reserve × 0.95 = 5.7 kWh over 2 h.
    expect(headroom(battery('a'), 1, TWO_HOURS_MS)).toBe(2_850);
  });

  it('is 0 at the reserve and small just above it', () => {
    expect(headroom(battery('a', { energyWh: 2_000 }), 1, HALF_HOUR_MS)).toBe(0);
    expect(headroom(battery('a', { energyWh: 1_000 }), 1, HALF_HOUR_MS)).toBe(0);
    // 500 Wh × 0.95 over half an hour.
    expect(headroom(battery('a', { energyWh: 2_500 }), 1, HALF_HOUR_MS)).toBe(950);
  });

  it('is 0 for a full battery asked to absorb, and the room / efficiency over the window otherwise', () => {
    expect(headroom(battery('a', { energyWh: 10_000 }), -1, HALF_HOUR_MS)).toBe(0);
    // 2 kWh of room take 2 / 0.95 kWh from the grid: 4210.5 W over half an hour, rounded down.
    expect(headroom(battery('a', { energyWh: 8_000 }), -1, HALF_HOUR_MS)).toBe(4_210);
  });

  it('ignores the reserve when charging', () => {
    expect(headroom(battery('a', { energyWh: 0, reservePct: 100 }), -1, HALF_HOUR_MS)).toBe(5_000);
  });

  it("uses the battery's efficiency when valid, the default otherwise", () => {
    expect(headroom(battery('a', { efficiency: 0.9 }), 1, TWO_HOURS_MS)).toBe(2_700);
    expect(headroom(battery('a', { efficiency: 1.5 }), 1, TWO_HOURS_MS)).toBe(2_850);
    expect(headroom(battery('a', { efficiency: 0 }), 1, TWO_HOURS_MS)).toBe(2_850);
    expect(usableEnergyWh(battery('a', { efficiency: 0.8 }), -1)).toBeCloseTo(2_500);
  });

  it('is 0 with no direction, no power limit or figures that are not numbers', () => {
    expect(headroom(battery('a'), 0, HALF_HOUR_MS)).toBe(0);
    expect(headroom(battery('a', { maxPowerW: 0 }), 1, HALF_HOUR_MS)).toBe(0);
    expect(headroom(battery('a', { energyWh: Number.NaN }), 1, HALF_HOUR_MS)).toBe(0);
  });

  it('with no time left, is the power limit while any energy is left', () => {
    expect(headroom(battery('a'), 1, 0)).toBe(5_000);
    expect(headroom(battery('a', { energyWh: 2_000 }), 1, 0)).toBe(0);
  });
});

describe('apportion and spreadProportionally', () => {
  it('splits by largest remainder, ties to the earlier entry, summing exactly', () => {
    expect(apportion(1_000, [1, 1, 1])).toEqual([334, 333, 333]);
    expect(apportion(10, [5, 3, 2])).toEqual([5, 3, 2]);
    expect(apportion(7, [0, 0])).toEqual([0, 0]);
  });

  it('gives every weight in full when they do not cover the amount', () => {
    expect(spreadProportionally(1_000, [300, 200])).toEqual([300, 200]);
  });

  it('leaves out shares under the minimum, smallest first, while the rest covers the amount', () => {
    expect(spreadProportionally(1_000, [5_000, 5_000, 100], 100)).toEqual([500, 500, 0]);
    // 50 each is under 100: one goes; 75 each is still under, but one battery alone cannot cover 150.
    expect(spreadProportionally(150, [100, 100, 100], 100)).toEqual([0, 75, 75]);
  });
});

describe('allocate', () => {
  it('splits the target in proportion to headroom, summing exactly', () => {
    const result = allocate({
      targetW: 5_000,
      durationMs: HALF_HOUR_MS,
      batteries: [battery('a'), battery('b', { maxPowerW: 3_000 }), battery('c', { maxPowerW: 2_000 })],
    });
    expect(powers(result)).toEqual({ a: 2_500, b: 1_500, c: 1_000 });
    expect(result).toMatchObject({ feasible: true, availableW: 10_000, shortfallW: 0, marginW: 5_000, devicesUsed: 3, excluded: [] });
    // 3 × 5.7 kWh − 5 kW × 0.5 h.
    expect(result.marginWh).toBe(3 * 5_700 - 2_500);
  });

  it('rounds to whole watts without breaking the sum', () => {
    const result = allocate({ targetW: 1_000.4, durationMs: HALF_HOUR_MS, batteries: [battery('a'), battery('b'), battery('c')] });
    expect(result.setpoints.map((s) => s.powerW)).toEqual([334, 333, 333]);
    expect(sumW(result)).toBe(1_000);
  });

  it('charges for a negative target, limited by the room left', () => {
    const result = allocate({
      targetW: -6_000,
      durationMs: HALF_HOUR_MS,
      batteries: [battery('a', { energyWh: 0 }), battery('b', { energyWh: 9_000 }), battery('c', { energyWh: 10_000 })],
    });
    // a: power-limited at 5 kW; b: 1 kWh of room / 0.95 over half an hour = 2105 W; c is full.
    expect(result.availableW).toBe(7_105);
    expect(result.feasible).toBe(true);
    expect(sumW(result)).toBe(-6_000);
    expect(result.setpoints.every((s) => s.powerW < 0)).toBe(true);
    expect(Math.abs(powers(result).b ?? 0)).toBeLessThanOrEqual(2_105);
    expect(result.excluded).toEqual([{ deviceId: 'c', reason: 'full' }]);
    expect(explainAllocation(result)).toMatch(/^can absorb 6 kW for 30 minutes from 2 batteries/);
  });

  it('excludes offline, stale, empty, full, powerless, unknown and repeated batteries, each with its reason', () => {
    const result = allocate({
      targetW: 3_000,
      durationMs: HALF_HOUR_MS,
      batteries: [
        battery('on'),
        battery('off', { presence: 'offline' }),
        battery('stale', { presence: 'stale' }),
        battery('reserve', { energyWh: 2_000 }),
        battery('zero', { maxPowerW: 0 }),
        battery('nan', { capacityWh: Number.NaN }),
        battery('on', { maxPowerW: 100_000 }),
      ],
    });
    expect(powers(result)).toEqual({ on: 3_000 });
    expect(result.excluded).toEqual([
      { deviceId: 'off', reason: 'offline' },
      { deviceId: 'stale', reason: 'stale' },
      { deviceId: 'reserve', reason: 'at-reserve' },
      { deviceId: 'zero', reason: 'no-power' },
      { deviceId: 'nan', reason: 'no-data' },
      { deviceId: 'on', reason: 'duplicate' },
    ]);
    expect(allocate({ targetW: -3_000, durationMs: HALF_HOUR_MS, batteries: [battery('full', { energyWh: 10_000 })] }).excluded).toEqual([
      { deviceId: 'full', reason: 'full' },
    ]);
  });

  it('limits each battery to the energy it can hold over the whole window', () => {
    // Over 2 h: a holds 2850 W (energy), b 1000 W (power); 5 kW asked.
    const result = allocate({ targetW: 5_000, durationMs: TWO_HOURS_MS, batteries: [battery('a'), battery('b', { maxPowerW: 1_000 })] });
    expect(result).toMatchObject({ feasible: false, availableW: 3_850, shortfallW: 1_150, marginW: -1_150 });
    expect(powers(result)).toEqual({ a: 2_850, b: 1_000 });
  });

  it('says plainly when the fleet is too small, with the shortfall', () => {
    const batteries = [
      ...Array.from({ length: 38 }, (_, i) => battery(`b${i}`, { maxPowerW: 2_500 })),
      ...Array.from({ length: 3 }, (_, i) => battery(`off${i}`, { presence: 'offline' })),
      ...Array.from({ length: 2 }, (_, i) => battery(`low${i}`, { energyWh: 1_500 })),
    ];
    const result = allocate({ targetW: 120_000, durationMs: HALF_HOUR_MS, batteries });
    expect(result).toMatchObject({ feasible: false, availableW: 95_000, shortfallW: 25_000, devicesUsed: 38 });
    expect(result.setpoints.every((s) => s.powerW === 2_500)).toBe(true);
    expect(explainAllocation(result)).toBe('can deliver 95 kW of the 120 kW asked for 30 minutes from 38 batteries (25 kW short); 3 offline, 2 at their reserve');
  });

  it('explains a feasible allocation with its margins', () => {
    const result = allocate({ targetW: 7_500, durationMs: HALF_HOUR_MS, batteries: [battery('a'), battery('b')] });
    expect(explainAllocation(result)).toBe('can deliver 7.5 kW for 30 minutes from 2 batteries (margin 2.5 kW, 7.7 kWh)');
  });

  it('drops shares under the minimum and re-spreads them', () => {
    const result = allocate({
      targetW: 1_000,
      durationMs: HALF_HOUR_MS,
      batteries: [battery('a'), battery('b'), battery('tiny', { maxPowerW: 100 })],
    });
    expect(powers(result)).toEqual({ a: 500, b: 500 });
    expect(result.excluded).toEqual([{ deviceId: 'tiny', reason: 'small-share' }]);
    expect(result.availableW).toBe(10_100);
    expect(explainAllocation(result)).toContain('1 not needed (share too small)');
  });

  it('keeps a share under the minimum when the target needs it', () => {
    const batteries = [battery('a', { maxPowerW: 100 }), battery('b', { maxPowerW: 100 }), battery('c', { maxPowerW: 100 })];
    expect(powers(allocate({ targetW: 150, durationMs: HALF_HOUR_MS, batteries }))).toEqual({ b: 75, c: 75 });
    expect(powers(allocate({ targetW: 60, durationMs: HALF_HOUR_MS, batteries }))).toEqual({ c: 60 });
  });

  it('leaves energy-limited batteries at the same relative depletion at the end of the window', () => {
    const batteries = [battery('a', { energyWh: 6_000 }), battery('b', { energyWh: 9_000 }), battery('c', { energyWh: 4_000, capacityWh: 5_000 })];
    const result = allocate({ targetW: 3_000, durationMs: TWO_HOURS_MS, batteries });
    const left = batteries.map((b) => {
      const usedWh = ((powers(result)[b.deviceId] ?? 0) * 2) / 0.95;
      const aboveReserveWh = b.energyWh - (b.reservePct / 100) * b.capacityWh;
      return (aboveReserveWh - usedWh) / aboveReserveWh;
    });
    for (const share of left) expect(share).toBeCloseTo(left[0] ?? 0, 2);
  });

  it('handles an empty fleet and a zero target', () => {
    const empty = allocate({ targetW: 10_000, durationMs: HALF_HOUR_MS, batteries: [] });
    expect(empty).toMatchObject({ feasible: false, availableW: 0, shortfallW: 10_000, devicesUsed: 0, setpoints: [] });
    expect(explainAllocation(empty)).toBe('cannot deliver any of the 10 kW asked for 30 minutes: no battery available');
    const zero = allocate({ targetW: 0, durationMs: HALF_HOUR_MS, batteries: [battery('a'), battery('b', { presence: 'offline' })] });
    expect(zero).toMatchObject({ feasible: true, setpoints: [], availableW: 0, shortfallW: 0, marginW: 0, marginWh: 0 });
    expect(explainAllocation(zero)).toBe('nothing asked (0 W); 1 offline');
  });

  it('refuses a target, window or minimum that makes no sense', () => {
    expect(() => allocate({ targetW: Number.NaN, durationMs: HALF_HOUR_MS, batteries: [] })).toThrow(RangeError);
    expect(() => allocate({ targetW: 1, durationMs: 0, batteries: [] })).toThrow(RangeError);
    expect(() => allocate({ targetW: 1, durationMs: HALF_HOUR_MS, batteries: [], minShareW: -1 })).toThrow(RangeError);
  });
});

describe('formatting', () => {
  it('writes powers and durations for people', () => {
    expect([formatPowerW(850), formatPowerW(95_000), formatPowerW(1_500), formatPowerW(2_250_000)]).toEqual(['850 W', '95 kW', '1.5 kW', '2.25 MW']);
    expect([formatDurationMs(45_000), formatDurationMs(HALF_HOUR_MS), formatDurationMs(3_600_000), formatDurationMs(8_100_000)]).toEqual([
      '45 seconds',
      '30 minutes',
      '1 hour',
      '2 hours 15 minutes',
    ]);
  });
});

const batteryArb = fc.record({
  presence: fc.constantFrom<BatteryView['presence']>('online', 'online', 'online', 'stale', 'offline'),
  maxPowerW: fc.oneof(fc.integer({ min: 0, max: 20_000 }), fc.double({ min: 0, max: 20_000, noNaN: true })),
  capacityWh: fc.integer({ min: 0, max: 40_000 }),
  fill: fc.double({ min: 0, max: 1, noNaN: true }),
  reservePct: fc.integer({ min: 0, max: 100 }),
  efficiency: fc.option(fc.double({ min: 0.5, max: 1, noNaN: true }), { nil: undefined }),
});

/** Random fleets: a few batteries, some offline or stale, any fill, reserve and efficiency. */
const fleetArb = fc.array(batteryArb, { maxLength: 40 }).map((rows) =>
  rows.map(
    (row, i): BatteryView => ({
      deviceId: `bat-${i}`,
      siteId: `site-${i % 7}`,
      presence: row.presence,
      maxPowerW: row.maxPowerW,
      capacityWh: row.capacityWh,
      energyWh: row.capacityWh * row.fill,
      reservePct: row.reservePct,
      measuredPowerW: null,
      ...(row.efficiency === undefined ? {} : { efficiency: row.efficiency }),
    }),
  ),
);

describe('allocate, for random fleets and targets', () => {
  const requestArb = fc.record({
    batteries: fleetArb,
    targetW: fc.oneof(fc.integer({ min: -300_000, max: 300_000 }), fc.double({ min: -300_000, max: 300_000, noNaN: true })),
    durationMs: fc.integer({ min: 60_000, max: 8 * 3_600_000 }),
    minShareW: fc.integer({ min: 0, max: 500 }),
  });

  it('never asks a battery for more than its headroom, nor against the target', () => {
    fc.assert(
      fc.property(requestArb, (request) => {
        const result = allocate(request);
        const sign = Math.sign(request.targetW);
        const byId = new Map(request.batteries.map((b) => [b.deviceId, b]));
        for (const { deviceId, powerW } of result.setpoints) {
          const b = byId.get(deviceId);
          expect(b?.presence).toBe('online');
          expect(Number.isInteger(powerW)).toBe(true);
          expect(Math.sign(powerW)).toBe(sign);
          expect(Math.abs(powerW)).toBeLessThanOrEqual(headroom(b as BatteryView, sign, request.durationMs));
        }
      }),
    );
  });

  it('sums to the target when feasible and to the available power when not', () => {
    fc.assert(
      fc.property(requestArb, (request) => {
        const result = allocate(request);
        const sign = Math.sign(request.targetW);
        const askedW = Math.round(Math.abs(request.targetW));
        const total = result.setpoints.reduce((sum, s) => sum + s.powerW, 0);
        const expectedAvailableW = request.batteries.filter((b) => b.presence === 'online').reduce((sum, b) => sum + headroom(b, sign, request.durationMs), 0);
        if (askedW > 0) expect(result.availableW).toBe(expectedAvailableW);
        if (result.feasible) {
          expect(Math.abs(total - request.targetW)).toBeLessThanOrEqual(1);
          expect(result.shortfallW).toBe(0);
        } else {
          expect(Math.abs(total)).toBe(result.availableW);
          expect(result.shortfallW).toBe(askedW - result.availableW);
          expect(result.shortfallW).toBeGreaterThan(0);
        }
        expect(result.devicesUsed).toBe(result.setpoints.length);
        expect(explainAllocation(result).length).toBeGreaterThan(0);
      }),
    );
  });

  it('accounts for every battery once: used or excluded with a reason', () => {
    fc.assert(
      fc.property(requestArb.filter((r) => Math.round(Math.abs(r.targetW)) > 0), (request) => {
        const result = allocate(request);
        const ids = [...result.setpoints.map((s) => s.deviceId), ...result.excluded.map((e) => e.deviceId)].sort();
        expect(ids).toEqual(request.batteries.map((b) => b.deviceId).sort());
      }),
    );
  });
});
