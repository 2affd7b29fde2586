/**
 * The correction step: batteries dropping out, under- and over-delivery
 * against the tolerance, batteries nearing their limits, hysteresis,
 * confidence, properties over random fleets, and a small simulation of a
 * fleet that follows its setpoints only roughly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocate, headroom, type BatteryView, type Setpoint } from './allocator.ts';
import { changeThresholdW, correct, type CorrectionRequest, type CurrentSetpoint, type DispatchCommandState } from './control-loop.ts';

const HALF_HOUR_MS = 30 * 60_000;

/** 5 kW / 10 kWh, 8 kWh stored, 20 % reserve: 5 kW of headroom either way over half an hour (4.2 kW charging). */
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

const cur = (deviceId: string, powerW: number, state: DispatchCommandState = 'accepted'): CurrentSetpoint => ({ deviceId, powerW, state });
const byId = (setpoints: Setpoint[]): Record<string, number> => Object.fromEntries(setpoints.map((s) => [s.deviceId, s.powerW]));

/** Three batteries asked 1 kW each for a 3 kW target, each measuring what `measuredW` says (default: exactly its ask). */
function threeAtOneKw(overrides: Partial<CorrectionRequest> = {}, measuredW: Partial<Record<'a' | 'b' | 'c', number | null>> = {}): CorrectionRequest {
  return {
    targetW: 3_000,
    remainingMs: HALF_HOUR_MS,
    batteries: (['a', 'b', 'c'] as const).map((id) => battery(id, { measuredPowerW: measuredW[id] === undefined ? 1_000 : measuredW[id] })),
    current: [cur('a', 1_000), cur('b', 1_000), cur('c', 1_000)],
    toleranceW: 100,
    ...overrides,
  };
}

const set = (request: CorrectionRequest, deviceId: string, overrides: Partial<BatteryView>): CorrectionRequest => ({
  ...request,
  batteries: request.batteries.map((b) => (b.deviceId === deviceId ? { ...b, ...overrides } : b)),
});

describe('correct', () => {
  it("moves an offline battery's share to the others and takes it out", () => {
    const result = correct(set(threeAtOneKw(), 'c', { presence: 'offline' }));
    expect(byId(result.setpoints)).toEqual({ a: 1_500, b: 1_500, c: 0 });
    expect(result).toMatchObject({ measuredW: 2_000, errorW: 1_000 });
    expect(result.confidence).toBeCloseTo(2 / 3);
    expect(result.reasons.join('\n')).toContain('c is offline');
  });

  it('does the same for a stale battery', () => {
    const result = correct(set(threeAtOneKw(), 'b', { presence: 'stale' }));
    expect(byId(result.setpoints)).toEqual({ a: 1_500, b: 0, c: 1_500 });
  });

  it('moves the share of a battery that rejected its command, without sending it anything', () => {
    const request = threeAtOneKw({ current: [cur('a', 1_000), cur('b', 1_000, 'rejected'), cur('c', 1_000)] }, { b: 300 });
    const result = correct(request);
    expect(byId(result.setpoints)).toEqual({ a: 1_500, c: 1_500 });
    // What it does on its own still counts in the measurement.
    expect(result.measuredW).toBe(2_300);
    expect(result.reasons.join('\n')).toContain('b rejected its command: not counted on');
  });

  it('sends nothing more to a battery already taken out while it stays away, and counts on it again once back', () => {
    const away = correct({
      ...set(threeAtOneKw({}, { a: 1_500, b: 1_500 }), 'c', { presence: 'offline' }),
      current: [cur('a', 1_500), cur('b', 1_500), cur('c', 0, 'sent')],
    });
    expect(away.setpoints).toEqual([]);
    const back = correct({ ...threeAtOneKw({}, { a: 2_000, b: 2_000, c: 0 }), current: [cur('a', 2_000), cur('b', 2_000), cur('c', 0, 'accepted')], targetW: 5_000 });
    // 1 kW more (a battery rejoining is spare headroom like any other): 5 kW spare on c, 3 kW on a and b.
    expect(byId(back.setpoints)).toEqual({ a: 2_273, b: 2_273, c: 454 });
  });

  it('refuses inputs that make no sense', () => {
    expect(() => correct(threeAtOneKw({ targetW: Number.NaN }))).toThrow(RangeError);
    expect(() => correct(threeAtOneKw({ toleranceW: -1 }))).toThrow(RangeError);
    expect(() => correct(threeAtOneKw({ gain: Number.POSITIVE_INFINITY }))).toThrow(RangeError);
  });

  it('ignores under-delivery within the tolerance', () => {
    const result = correct(threeAtOneKw({ toleranceW: 200 }, { a: 900 }));
    expect(result.setpoints).toEqual([]);
    expect(result).toMatchObject({ measuredW: 2_900, errorW: 100, confidence: 1 });
    expect(result.reasons).toEqual(['on target within tolerance: no change']);
  });

  it('re-spreads under-delivery beyond the tolerance, in proportion to spare headroom', () => {
    const result = correct(threeAtOneKw({ toleranceW: 200 }, { a: 600 }));
    const asks = byId(result.setpoints);
    expect(Object.values(asks).reduce((a, b) => a + b, 0)).toBe(3_400);
    // Equal spare headroom (4 kW each): 400 W in thirds.
    expect(asks).toEqual({ a: 1_134, b: 1_133, c: 1_133 });
    expect(result.reasons.join('\n')).toContain('deliver 400 W less than asked');
  });

  it('takes off over-delivery in proportion to the asks', () => {
    const result = correct(threeAtOneKw({}, { a: 1_400 }));
    expect(byId(result.setpoints)).toEqual({ a: 866, b: 867, c: 867 });
  });

  it('asks less of a battery nearing its reserve, and the rest of the others', () => {
    // 200 Wh above the reserve, 190 Wh at the grid: 380 W for the remaining half hour.
    const result = correct(set(threeAtOneKw(), 'a', { energyWh: 2_200 }));
    expect(byId(result.setpoints)).toEqual({ a: 380, b: 1_310, c: 1_310 });
    expect(result.reasons.join('\n')).toContain('a can hold only 380 W');
  });

  it('asks less of a battery nearly full when absorbing', () => {
    const request: CorrectionRequest = {
      targetW: -3_000,
      remainingMs: HALF_HOUR_MS,
      batteries: [battery('a', { energyWh: 9_800, measuredPowerW: -1_000 }), battery('b', { measuredPowerW: -1_000 }), battery('c', { measuredPowerW: -1_000 })],
      current: [cur('a', -1_000), cur('b', -1_000), cur('c', -1_000)],
      toleranceW: 100,
    };
    // 200 Wh of room take 210.5 Wh from the grid: 421 W over half an hour.
    expect(byId(correct(request).setpoints)).toEqual({ a: -421, b: -1_290, c: -1_289 });
  });

  it('adds batteries that were not in the allocation when the others run out of headroom', () => {
    const request: CorrectionRequest = {
      targetW: 12_000,
      remainingMs: HALF_HOUR_MS,
      batteries: [battery('a', { measuredPowerW: 4_000 }), battery('b', { measuredPowerW: 4_000 }), battery('c', { presence: 'offline' }), battery('d')],
      current: [cur('a', 4_000), cur('b', 4_000), cur('c', 4_000)],
      toleranceW: 100,
    };
    // 4 kW over spare headrooms of 1, 1 and 5 kW.
    expect(byId(correct(request).setpoints)).toEqual({ a: 4_572, b: 4_571, c: 0, d: 2_857 });
  });

  it('runs every battery at its headroom and says what is missing when they cannot make up the loss', () => {
    const request: CorrectionRequest = {
      targetW: 12_000,
      remainingMs: HALF_HOUR_MS,
      batteries: [battery('a', { measuredPowerW: 4_000 }), battery('b', { measuredPowerW: 4_000 }), battery('c', { presence: 'offline' })],
      current: [cur('a', 4_000), cur('b', 4_000), cur('c', 4_000)],
      toleranceW: 100,
    };
    const result = correct(request);
    expect(byId(result.setpoints)).toEqual({ a: 5_000, b: 5_000, c: 0 });
    expect(result.reasons.join('\n')).toContain('2 kW short');
  });

  it('never leaves a battery running against the target', () => {
    const request = threeAtOneKw({ current: [cur('a', -500), cur('b', 1_500), cur('c', 1_500)] }, { a: -500, b: 1_500, c: 1_500 });
    expect(correct(request).setpoints).toEqual([{ deviceId: 'a', powerW: 0 }]);
  });

  it('brings every battery to 0 W for a zero target', () => {
    expect(byId(correct(threeAtOneKw({ targetW: 0 })).setpoints)).toEqual({ a: 0, b: 0, c: 0 });
  });

  it('moves the share of a dropped battery when absorbing too', () => {
    const request: CorrectionRequest = {
      targetW: -3_000,
      remainingMs: HALF_HOUR_MS,
      batteries: [battery('a', { measuredPowerW: -1_000 }), battery('b', { measuredPowerW: -1_000 }), battery('c', { presence: 'offline' })],
      current: [cur('a', -1_000), cur('b', -1_000), cur('c', -1_000)],
      toleranceW: 100,
    };
    expect(byId(correct(request).setpoints)).toEqual({ a: -1_500, b: -1_500, c: 0 });
  });

  describe('hysteresis', () => {
    it('is the larger of the minimum change and 1 % of the power limit', () => {
      expect(changeThresholdW(battery('a'))).toBe(50);
      expect(changeThresholdW(battery('a', { maxPowerW: 20_000 }))).toBe(200);
      expect(changeThresholdW(battery('a'), 80)).toBe(80);
    });

    it('holds a change under the threshold', () => {
      const result = correct(threeAtOneKw({ toleranceW: 30 }, { a: 960 }));
      expect(result.setpoints).toEqual([]);
      expect(result.reasons.join('\n')).toContain('40 W of changes held back');
    });

    it('gathers a correction too small to spread on fewer batteries rather than dropping it', () => {
      const big = (request: CorrectionRequest): CorrectionRequest => ({ ...request, batteries: request.batteries.map((b) => ({ ...b, maxPowerW: 20_000 })) });
      // 150 W is under the 200 W threshold of any one battery: held.
      expect(correct(big(threeAtOneKw({}, { a: 850 }))).setpoints).toEqual([]);
      // 300 W in thirds would be held three times; on one battery it passes.
      expect(correct(big(threeAtOneKw({}, { a: 700 }))).setpoints).toEqual([{ deviceId: 'c', powerW: 1_300 }]);
    });

    it('always sends a reduction to the headroom, however small', () => {
      // 475 Wh at the grid: 950 W for the half hour, 50 W under the ask.
      const result = correct(set(threeAtOneKw(), 'a', { energyWh: 2_500 }));
      expect(byId(result.setpoints)).toMatchObject({ a: 950 });
    });
  });

  it('counts in the confidence only batteries that accepted and report', () => {
    const request = threeAtOneKw({ current: [cur('a', 1_000), cur('b', 1_000, 'sent'), cur('c', 1_000)] }, { b: 200, c: null });
    const result = correct(request);
    expect(result.confidence).toBeCloseTo(1 / 3);
    expect(result.measuredW).toBe(1_200);
    // b has not accepted yet and c does not report: neither is under-delivery.
    expect(result.setpoints).toEqual([]);
  });

  it('reports full confidence for a zero target and none for an empty fleet', () => {
    expect(correct(threeAtOneKw({ targetW: 0 })).confidence).toBe(1);
    const empty = correct({ targetW: 5_000, remainingMs: HALF_HOUR_MS, batteries: [], current: [], toleranceW: 100 });
    expect(empty).toMatchObject({ setpoints: [], measuredW: 0, errorW: 5_000, confidence: 0 });
    expect(empty.reasons.join('\n')).toContain('5 kW short');
  });
});

const stateArb = fc.constantFrom<DispatchCommandState>('sent', 'accepted', 'accepted', 'accepted', 'rejected', 'expired', 'failed', 'completed');

const fleetArb = fc
  .array(
    fc.record({
      presence: fc.constantFrom<BatteryView['presence']>('online', 'online', 'online', 'stale', 'offline'),
      maxPowerW: fc.integer({ min: 0, max: 20_000 }),
      capacityWh: fc.integer({ min: 0, max: 40_000 }),
      fill: fc.double({ min: 0, max: 1, noNaN: true }),
      reservePct: fc.integer({ min: 0, max: 100 }),
      measuredPowerW: fc.option(fc.integer({ min: -20_000, max: 20_000 }), { nil: null }),
      dispatched: fc.option(fc.record({ powerW: fc.integer({ min: -20_000, max: 20_000 }), state: stateArb }), { nil: null }),
    }),
    { maxLength: 30 },
  )
  .map((rows) => ({
    batteries: rows.map(
      (row, i): BatteryView => ({
        deviceId: `bat-${i}`,
        siteId: `site-${i % 5}`,
        presence: row.presence,
        maxPowerW: row.maxPowerW,
        capacityWh: row.capacityWh,
        energyWh: row.capacityWh * row.fill,
        reservePct: row.reservePct,
        measuredPowerW: row.measuredPowerW,
      }),
    ),
    current: rows.flatMap((row, i): CurrentSetpoint[] => (row.dispatched === null ? [] : [{ deviceId: `bat-${i}`, ...row.dispatched }])),
  }));

describe('correct, for random fleets and states', () => {
  it('never asks a battery for more than its headroom nor against the target, and sends each at most one setpoint', () => {
    fc.assert(
      fc.property(
        fleetArb,
        fc.integer({ min: -200_000, max: 200_000 }),
        fc.integer({ min: 0, max: 4 * 3_600_000 }),
        fc.integer({ min: 0, max: 2_000 }),
        fc.double({ min: 0.1, max: 1, noNaN: true }),
        ({ batteries, current }, targetW, remainingMs, toleranceW, gain) => {
          const result = correct({ targetW, remainingMs, batteries, current, toleranceW, gain });
          const sign = Math.sign(targetW);
          const ids = result.setpoints.map((s) => s.deviceId);
          expect(new Set(ids).size).toBe(ids.length);
          for (const { deviceId, powerW } of result.setpoints) {
            if (powerW === 0) continue;
            const b = batteries.find((x) => x.deviceId === deviceId) as BatteryView;
            expect(b.presence).toBe('online');
            expect(Math.sign(powerW)).toBe(sign);
            expect(Math.abs(powerW)).toBeLessThanOrEqual(headroom(b, sign, remainingMs));
          }
          expect(result.confidence).toBeGreaterThanOrEqual(0);
          expect(result.confidence).toBeLessThanOrEqual(1);
          expect(result.errorW).toBeCloseTo(targetW - result.measuredW);
        },
      ),
    );
  });
});

/** A small seeded generator, so the simulation is the same on every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * A tiny fleet model: each battery accepts what it is sent before the next
 * step and then delivers `ratio` × its setpoint ± `noiseW`, drawing the
 * energy from its cells. Returns the measured power seen at each step.
 */
function simulate(options: { ratio: number; noiseW: number; seed: number; steps: number; targetW: number }): number[] {
  const { ratio, noiseW, seed, steps, targetW } = options;
  const random = seededRandom(seed);
  const stepMs = 60_000;
  const durationMs = (steps + 10) * stepMs;
  const fleet = new Map<string, BatteryView>(
    Array.from({ length: 10 }, (_, i) => [`b${i}`, battery(`b${i}`, { capacityWh: 13_500, energyWh: 7_000 })] as const),
  );
  const current = new Map<string, CurrentSetpoint>(
    allocate({ targetW, durationMs, batteries: [...fleet.values()] }).setpoints.map((s) => [s.deviceId, { ...s, state: 'sent' as const }]),
  );
  const measured: number[] = [];
  for (let step = 1; step <= steps; step++) {
    for (const [id, b] of fleet) {
      const command = current.get(id);
      if (command?.state === 'sent') command.state = 'accepted';
      const askW = command?.powerW ?? 0;
      const deliveredW = askW === 0 ? 0 : ratio * askW + (random() * 2 - 1) * noiseW;
      fleet.set(id, { ...b, measuredPowerW: deliveredW, energyWh: b.energyWh - (deliveredW * stepMs) / 3_600_000 / 0.95 });
    }
    const result = correct({
      targetW,
      remainingMs: durationMs - step * stepMs,
      batteries: [...fleet.values()],
      current: [...current.values()],
      toleranceW: Math.abs(targetW) / 100,
    });
    measured.push(result.measuredW);
    for (const s of result.setpoints) current.set(s.deviceId, { ...s, state: 'sent' });
  }
  return measured;
}

describe('closed loop against a fleet that follows roughly', () => {
  /** At 95 % of the target by the 5th step and never below after; within 3 % from the 5th step on. */
  const check = (measured: number[], targetW: number): void => {
    const reached = measured.findIndex((m) => m / targetW >= 0.95);
    expect(reached).toBeGreaterThanOrEqual(0);
    expect(reached).toBeLessThan(5);
    for (const m of measured.slice(reached)) expect(m / targetW).toBeGreaterThanOrEqual(0.95);
    for (const m of measured.slice(4)) expect(Math.abs(m - targetW) / Math.abs(targetW)).toBeLessThanOrEqual(0.03);
  };

  it('reaches 95 % of the target within 5 steps and stays within 3 % when batteries deliver 90 % of their setpoint', () => {
    const measured = simulate({ ratio: 0.9, noiseW: 50, seed: 1, steps: 20, targetW: 30_000 });
    check(measured, 30_000);
    // At 90 %, one correction is enough: within 3 % from the second step on.
    for (const m of measured.slice(1)) expect(Math.abs(m - 30_000) / 30_000).toBeLessThanOrEqual(0.03);
  });

  it('does so for other delivery ratios, noise and targets, charging or discharging', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.8, max: 1.1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer(),
        fc.integer({ min: 10_000, max: 35_000 }),
        fc.boolean(),
        (ratio, noise, seed, magnitudeW, charge) => {
          const targetW = charge ? -magnitudeW : magnitudeW;
          // Up to ± 1 % of the target in all, so the noise alone cannot leave the 3 % band.
          const noiseW = (noise * magnitudeW) / 1_000;
          check(simulate({ ratio, noiseW, seed, steps: 15, targetW }), targetW);
        },
      ),
      { numRuns: 60 },
    );
  });
});
