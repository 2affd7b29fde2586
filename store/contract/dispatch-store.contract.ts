/**
 * Contract of DispatchStore, run by every implementation against a fresh,
 * empty store per test: creation with each target form, the checks of what
 * callers pass, which dispatches are running, the forward-only states,
 * what the loop updates, listing with a state filter and cursors, and the
 * samples with their per-dispatch bound. The suite chooses the bound of
 * the store it opens for that test, so it is checked with a few samples.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DispatchState } from '../../protocol/index.ts';
import { StoreError, type DispatchPlanRecord, type DispatchSample, type DispatchStore, type NewDispatch, type StoredDispatch } from '../types.ts';
import type { OpenStore } from './open-store.ts';

/** Opens a fresh, empty store; with `maxSamplesPerDispatch`, keeping that many samples per dispatch. */
export type OpenDispatchStore = (options: { maxSamplesPerDispatch?: number }) => ReturnType<OpenStore<DispatchStore>>;

/** When the dispatches below are created, unless a test says otherwise. */
const T0 = 1_000_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** A UUID that sorts by n, for tests that care about the order of ids. */
function uuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

const PLAN: DispatchPlanRecord = {
  feasible: true,
  availableW: 12_500,
  shortfallW: 0,
  marginW: 2_500,
  marginWh: 1_250.5,
  devicesUsed: 2,
  explanation: 'can deliver 10 kW for 1 h from 2 batteries',
};

function newDispatch(n: number, values: Partial<NewDispatch> = {}): NewDispatch {
  return {
    id: uuid(n),
    target: { fleet: true },
    powerW: 10_000,
    startAtMs: T0,
    durationMs: HOUR_MS,
    allowPartial: false,
    plan: PLAN,
    setpoints: { 'bat-1': 6_000, 'bat-2': 4_000 },
    ...values,
  };
}

function sample(atMs: number, values: Partial<DispatchSample> = {}): DispatchSample {
  return { atMs, targetW: 10_000, measuredW: 9_500.5, confidence: 0.9, devicesReporting: 2, ...values };
}

function expectStoreError(fn: () => unknown, code: StoreError['code']): StoreError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StoreError);
  expect((caught as StoreError).code).toBe(code);
  return caught as StoreError;
}

/** Every state change and whether the store allows it (the same state again always is). */
const ALLOWED: ReadonlyArray<[DispatchState, DispatchState]> = [
  ['scheduled', 'active'],
  ['scheduled', 'cancelled'],
  ['scheduled', 'failed'],
  ['active', 'completed'],
  ['active', 'cancelled'],
  ['active', 'failed'],
];
const STATES: readonly DispatchState[] = ['scheduled', 'active', 'completed', 'cancelled', 'failed'];

export function describeDispatchStoreContract(name: string, open: OpenDispatchStore): void {
  describe(`DispatchStore contract: ${name}`, () => {
    let closers: Array<() => Promise<void>> = [];

    async function openWith(options: { maxSamplesPerDispatch?: number } = {}): Promise<DispatchStore> {
      const { store, close } = await open(options);
      closers.push(close);
      return store;
    }

    afterEach(async () => {
      for (const close of closers) await close();
      closers = [];
    });

    /** Brings a new dispatch to `state` along allowed changes, at T0 + 1 and T0 + 2. */
    function createIn(store: DispatchStore, n: number, state: DispatchState): StoredDispatch {
      store.createDispatch(newDispatch(n), T0);
      if (state === 'scheduled') return store.getDispatch(uuid(n))!;
      if (state === 'completed') store.updateDispatch(uuid(n), { state: 'active' }, T0 + 1);
      return store.updateDispatch(uuid(n), { state }, T0 + 2);
    }

    describe('creation', () => {
      it('stores a new dispatch scheduled and gives it back exactly, for each target form', async () => {
        const store = await openWith();
        const created = store.createDispatch(newDispatch(1), T0 - 500);
        expect(created).toEqual({
          id: uuid(1),
          target: { fleet: true },
          powerW: 10_000,
          startAtMs: T0,
          durationMs: HOUR_MS,
          state: 'scheduled',
          allowPartial: false,
          createdAtMs: T0 - 500,
          plan: PLAN,
          setpoints: { 'bat-1': 6_000, 'bat-2': 4_000 },
          lastLoopAtMs: null,
          reason: null,
          updatedAtMs: T0 - 500,
        });
        expect(store.getDispatch(uuid(1))).toEqual(created);

        const infeasible: DispatchPlanRecord = { feasible: false, availableW: 0, shortfallW: 5_000.25, marginW: -5_000.25, marginWh: -2_500, devicesUsed: 0, explanation: '' };
        const region = store.createDispatch(newDispatch(2, { target: { region: 'north' }, powerW: -5_000.25, allowPartial: true, plan: infeasible, setpoints: {} }), T0);
        expect(region).toMatchObject({ target: { region: 'north' }, powerW: -5_000.25, allowPartial: true, plan: infeasible, setpoints: {} });
        expect(store.getDispatch(uuid(2))).toEqual(region);

        const sites = store.createDispatch(newDispatch(3, { target: { siteIds: ['site-2', 'site-1'] }, setpoints: { 'bat-9': -0.5 } }), T0);
        expect(sites).toMatchObject({ target: { siteIds: ['site-2', 'site-1'] }, setpoints: { 'bat-9': -0.5 } });
        expect(store.getDispatch(uuid(3))).toEqual(sites);

        expect(store.getDispatch(uuid(4))).toBeUndefined();
      });

      it('keeps only the documented fields of the plan', async () => {
        const store = await openWith();
        const plan = { ...PLAN, setpoints: [{ deviceId: 'bat-1', powerW: 1 }], excluded: [] } as DispatchPlanRecord;
        expect(store.createDispatch(newDispatch(1, { plan }), T0).plan).toEqual(PLAN);
      });

      it('refuses an id that exists with conflict, keeping the first', async () => {
        const store = await openWith();
        const first = store.createDispatch(newDispatch(1), T0);
        expectStoreError(() => store.createDispatch(newDispatch(1, { powerW: 1 }), T0 + 1), 'conflict');
        expect(store.getDispatch(uuid(1))).toEqual(first);
      });

      it('refuses invalid input with invalid, saying what is wrong, and writes nothing', async () => {
        const store = await openWith();
        const bad: Array<{ what: string; dispatch: NewDispatch; nowMs?: number; says: RegExp }> = [
          { what: 'id not a UUID', dispatch: newDispatch(1, { id: 'dispatch-1' }), says: /id/ },
          { what: 'id uppercase', dispatch: newDispatch(1, { id: uuid(10).toUpperCase() }), says: /id/ },
          { what: 'target empty', dispatch: newDispatch(1, { target: {} as NewDispatch['target'] }), says: /target/ },
          { what: 'target two forms', dispatch: newDispatch(1, { target: { fleet: true, region: 'north' } as unknown as NewDispatch['target'] }), says: /target/ },
          { what: 'target null', dispatch: newDispatch(1, { target: null as unknown as NewDispatch['target'] }), says: /target/ },
          { what: 'target unknown form', dispatch: newDispatch(1, { target: { country: 'x' } as unknown as NewDispatch['target'] }), says: /target/ },
          { what: 'fleet false', dispatch: newDispatch(1, { target: { fleet: false } as unknown as NewDispatch['target'] }), says: /target\.fleet/ },
          { what: 'region empty', dispatch: newDispatch(1, { target: { region: '' } }), says: /target\.region/ },
          { what: 'region too long', dispatch: newDispatch(1, { target: { region: 'r'.repeat(65) } }), says: /target\.region/ },
          { what: 'no sites', dispatch: newDispatch(1, { target: { siteIds: [] } }), says: /target\.siteIds/ },
          { what: 'too many sites', dispatch: newDispatch(1, { target: { siteIds: Array.from({ length: 10_001 }, (_, i) => `s${i}`) } }), says: /target\.siteIds/ },
          { what: 'site id empty', dispatch: newDispatch(1, { target: { siteIds: ['s1', ''] } }), says: /target\.siteIds/ },
          { what: 'site id too long', dispatch: newDispatch(1, { target: { siteIds: ['s'.repeat(65)] } }), says: /target\.siteIds/ },
          { what: 'site id not a string', dispatch: newDispatch(1, { target: { siteIds: [1 as unknown as string] } }), says: /target\.siteIds/ },
          { what: 'power NaN', dispatch: newDispatch(1, { powerW: Number.NaN }), says: /powerW/ },
          { what: 'power infinite', dispatch: newDispatch(1, { powerW: Number.POSITIVE_INFINITY }), says: /powerW/ },
          { what: 'power over 1 GW', dispatch: newDispatch(1, { powerW: 1e9 + 1 }), says: /powerW/ },
          { what: 'power under -1 GW', dispatch: newDispatch(1, { powerW: -1e9 - 1 }), says: /powerW/ },
          { what: 'start fractional', dispatch: newDispatch(1, { startAtMs: T0 + 0.5 }), says: /startAtMs/ },
          { what: 'start unsafe', dispatch: newDispatch(1, { startAtMs: 1e20 }), says: /startAtMs/ },
          { what: 'duration under 1 s', dispatch: newDispatch(1, { durationMs: 999 }), says: /durationMs/ },
          { what: 'duration over 7 days', dispatch: newDispatch(1, { durationMs: 7 * DAY_MS + 1 }), says: /durationMs/ },
          { what: 'duration fractional', dispatch: newDispatch(1, { durationMs: 1_000.5 }), says: /durationMs/ },
          { what: 'allowPartial not boolean', dispatch: newDispatch(1, { allowPartial: 1 as unknown as boolean }), says: /allowPartial/ },
          { what: 'plan missing', dispatch: newDispatch(1, { plan: null as unknown as DispatchPlanRecord }), says: /plan/ },
          { what: 'plan feasible', dispatch: newDispatch(1, { plan: { ...PLAN, feasible: 'yes' as unknown as boolean } }), says: /plan\.feasible/ },
          { what: 'plan availableW', dispatch: newDispatch(1, { plan: { ...PLAN, availableW: Number.NaN } }), says: /plan\.availableW/ },
          { what: 'plan shortfallW', dispatch: newDispatch(1, { plan: { ...PLAN, shortfallW: Number.POSITIVE_INFINITY } }), says: /plan\.shortfallW/ },
          { what: 'plan marginW', dispatch: newDispatch(1, { plan: { ...PLAN, marginW: '1' as unknown as number } }), says: /plan\.marginW/ },
          { what: 'plan marginWh', dispatch: newDispatch(1, { plan: { ...PLAN, marginWh: Number.NEGATIVE_INFINITY } }), says: /plan\.marginWh/ },
          { what: 'plan devicesUsed', dispatch: newDispatch(1, { plan: { ...PLAN, devicesUsed: 1.5 } }), says: /plan\.devicesUsed/ },
          { what: 'plan devicesUsed negative', dispatch: newDispatch(1, { plan: { ...PLAN, devicesUsed: -1 } }), says: /plan\.devicesUsed/ },
          { what: 'plan explanation too long', dispatch: newDispatch(1, { plan: { ...PLAN, explanation: 'x'.repeat(2_001) } }), says: /plan\.explanation/ },
          { what: 'setpoints array', dispatch: newDispatch(1, { setpoints: [] as unknown as Record<string, number> }), says: /setpoints/ },
          { what: 'setpoint NaN', dispatch: newDispatch(1, { setpoints: { 'bat-1': Number.NaN } }), says: /setpoints/ },
          { what: 'setpoint infinite', dispatch: newDispatch(1, { setpoints: { 'bat-1': Number.NEGATIVE_INFINITY } }), says: /setpoints/ },
          { what: 'setpoint a string', dispatch: newDispatch(1, { setpoints: { 'bat-1': '5' as unknown as number } }), says: /setpoints/ },
          { what: 'setpoint id empty', dispatch: newDispatch(1, { setpoints: { '': 5 } }), says: /setpoints/ },
          { what: 'setpoint id too long', dispatch: newDispatch(1, { setpoints: { ['d'.repeat(65)]: 5 } }), says: /setpoints/ },
          {
            what: 'too many setpoints',
            dispatch: newDispatch(1, { setpoints: Object.fromEntries(Array.from({ length: 100_001 }, (_, i) => [`d${i}`, 1])) }),
            says: /setpoints/,
          },
          { what: 'nowMs fractional', dispatch: newDispatch(1), nowMs: 1.5, says: /nowMs/ },
          { what: 'nowMs NaN', dispatch: newDispatch(1), nowMs: Number.NaN, says: /nowMs/ },
        ];
        for (const { what, dispatch, nowMs, says } of bad) {
          const error = expectStoreError(() => store.createDispatch(dispatch, nowMs ?? T0), 'invalid');
          expect(error.message, what).toMatch(says);
        }
        // Every problem is listed at once.
        const many = expectStoreError(() => store.createDispatch(newDispatch(1, { id: 'x', powerW: Number.NaN, durationMs: 0, setpoints: { a: Number.NaN } }), T0), 'invalid');
        for (const field of [/id/, /powerW/, /durationMs/, /setpoints/]) expect(many.message).toMatch(field);

        expect(store.listDispatches({ limit: 10 })).toEqual({ dispatches: [], next: null });
        expect(store.runningDispatches(Number.MAX_SAFE_INTEGER)).toEqual([]);
        expect(store.getDispatch(uuid(1))).toBeUndefined();

        // The bounds themselves pass.
        const sites = Array.from({ length: 10_000 }, (_, i) => `${i}`.padStart(64, 's'));
        const setpoints = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`${i}`.padStart(64, 'd'), i % 2 === 0 ? 1.5 : -1.5]));
        const plan = { ...PLAN, explanation: 'x'.repeat(2_000) };
        const longest = store.createDispatch(newDispatch(1, { target: { siteIds: sites }, setpoints, powerW: 1e9, durationMs: 7 * DAY_MS, plan }), T0);
        expect(store.getDispatch(longest.id)).toEqual(longest);
        expect(longest).toMatchObject({ target: { siteIds: sites }, powerW: 1e9, durationMs: 7 * DAY_MS, plan });
        expect(Object.keys(longest.setpoints)).toHaveLength(100_000);
        expect(store.createDispatch(newDispatch(2, { target: { region: 'r'.repeat(64) }, powerW: -1e9, durationMs: 1_000 }), T0)).toMatchObject({
          target: { region: 'r'.repeat(64) },
          powerW: -1e9,
          durationMs: 1_000,
        });
      });
    });

    describe('running dispatches', () => {
      it('lists scheduled ones whose start has come and active ones, oldest start first, and never finished ones', async () => {
        const store = await openWith();
        store.createDispatch(newDispatch(1, { startAtMs: T0 + 5_000 }), T0);
        store.createDispatch(newDispatch(2, { startAtMs: T0 + 1_000 }), T0);
        store.createDispatch(newDispatch(3, { startAtMs: T0 + 1_000 }), T0);
        store.createDispatch(newDispatch(4, { startAtMs: T0 + 9_000 }), T0);
        // Active before its start (started early): still running.
        store.createDispatch(newDispatch(5, { startAtMs: T0 + 20_000 }), T0);
        store.updateDispatch(uuid(5), { state: 'active' }, T0);
        for (const [n, state] of [[6, 'completed'], [7, 'cancelled'], [8, 'failed']] as const) {
          store.createDispatch(newDispatch(n, { startAtMs: T0 }), T0);
          store.updateDispatch(uuid(n), { state: 'active' }, T0);
          store.updateDispatch(uuid(n), { state }, T0);
        }

        const ids = (nowMs: number) => store.runningDispatches(nowMs).map((d) => d.id);
        expect(ids(T0)).toEqual([uuid(5)]);
        expect(ids(T0 + 999)).toEqual([uuid(5)]);
        expect(ids(T0 + 1_000)).toEqual([uuid(2), uuid(3), uuid(5)]);
        expect(ids(T0 + 5_000)).toEqual([uuid(2), uuid(3), uuid(1), uuid(5)]);
        expect(ids(T0 + 30_000)).toEqual([uuid(2), uuid(3), uuid(1), uuid(4), uuid(5)]);

        store.updateDispatch(uuid(2), { state: 'active' }, T0 + 1_000);
        store.updateDispatch(uuid(3), { state: 'cancelled', reason: 'operator' }, T0 + 1_000);
        const running = store.runningDispatches(T0 + 5_000);
        expect(running.map((d) => [d.id, d.state])).toEqual([
          [uuid(2), 'active'],
          [uuid(1), 'scheduled'],
          [uuid(5), 'active'],
        ]);
        expect(running[0]).toEqual(store.getDispatch(uuid(2)));
        expectStoreError(() => store.runningDispatches(1.5), 'invalid');
      });
    });

    describe('states', () => {
      it('makes every forward change, setting updatedAtMs to nowMs', async () => {
        const store = await openWith();
        let n = 0;
        for (const [from, to] of ALLOWED) {
          n += 1;
          createIn(store, n, from);
          const after = store.updateDispatch(uuid(n), { state: to }, T0 + 100);
          expect(after, `${from} → ${to}`).toMatchObject({ state: to, updatedAtMs: T0 + 100 });
          expect(store.getDispatch(uuid(n))).toEqual(after);
        }
      });

      it('refuses every other change with conflict naming both states, writing nothing', async () => {
        const store = await openWith();
        let n = 0;
        for (const from of STATES) {
          for (const to of STATES) {
            if (from === to || ALLOWED.some(([a, b]) => a === from && b === to)) continue;
            n += 1;
            const before = createIn(store, n, from);
            const error = expectStoreError(() => store.updateDispatch(uuid(n), { state: to, setpoints: {}, lastLoopAtMs: T0 + 99, reason: 'x' }, T0 + 100), 'conflict');
            expect(error.message, `${from} → ${to}`).toContain(from);
            expect(error.message, `${from} → ${to}`).toContain(to);
            expect(store.getDispatch(uuid(n))).toEqual(before);
          }
        }
        // scheduled → completed, active → scheduled, and each final state → the four others.
        expect(n).toBe(1 + 1 + 3 * 4);
      });

      it('allows the same state again, changing only the other fields and not updatedAtMs', async () => {
        const store = await openWith();
        let n = 0;
        for (const state of STATES) {
          n += 1;
          const before = createIn(store, n, state);
          const after = store.updateDispatch(uuid(n), { state, lastLoopAtMs: T0 + 50 }, T0 + 100);
          expect(after, state).toEqual({ ...before, lastLoopAtMs: T0 + 50 });
          expect(store.updateDispatch(uuid(n), { state }, T0 + 200)).toEqual(after);
        }
      });

      it('refuses an unknown id with not-found and an unknown state with invalid', async () => {
        const store = await openWith();
        expectStoreError(() => store.updateDispatch(uuid(1), { state: 'active' }, T0), 'not-found');
        expectStoreError(() => store.updateDispatch(uuid(1), {}, T0), 'not-found');
        store.createDispatch(newDispatch(1), T0);
        const error = expectStoreError(() => store.updateDispatch(uuid(1), { state: 'paused' as DispatchState }, T0), 'invalid');
        expect(error.message).toMatch(/state/);
        expect(store.getDispatch(uuid(1))?.state).toBe('scheduled');
      });
    });

    describe('what the loop updates', () => {
      it('replaces setpoints, sets lastLoopAtMs and the reason, keeping what it is not given', async () => {
        const store = await openWith();
        const created = store.createDispatch(newDispatch(1), T0);
        const active = store.updateDispatch(uuid(1), { state: 'active', setpoints: { 'bat-1': 7_000, 'bat-3': 3_000.5 }, lastLoopAtMs: T0 + 10 }, T0 + 10);
        expect(active).toEqual({ ...created, state: 'active', setpoints: { 'bat-1': 7_000, 'bat-3': 3_000.5 }, lastLoopAtMs: T0 + 10, updatedAtMs: T0 + 10 });

        const looped = store.updateDispatch(uuid(1), { lastLoopAtMs: T0 + 20 }, T0 + 20);
        expect(looped).toEqual({ ...active, lastLoopAtMs: T0 + 20 });
        const emptied = store.updateDispatch(uuid(1), { setpoints: {} }, T0 + 30);
        expect(emptied).toEqual({ ...looped, setpoints: {} });
        const noted = store.updateDispatch(uuid(1), { reason: 'battery bat-1 offline' }, T0 + 40);
        expect(noted).toEqual({ ...emptied, reason: 'battery bat-1 offline' });
        expect(store.updateDispatch(uuid(1), {}, T0 + 50)).toEqual(noted);
        expect(store.updateDispatch(uuid(1), { reason: null }, T0 + 60)).toEqual({ ...noted, reason: null });

        const failed = store.updateDispatch(uuid(1), { state: 'failed', reason: 'no battery reports', setpoints: {} }, T0 + 70);
        expect(failed).toMatchObject({ state: 'failed', reason: 'no battery reports', updatedAtMs: T0 + 70, lastLoopAtMs: T0 + 20 });
        expect(store.getDispatch(uuid(1))).toEqual(failed);
      });

      it('cuts a long reason to 1 000 characters', async () => {
        const store = await openWith();
        store.createDispatch(newDispatch(1), T0);
        expect(store.updateDispatch(uuid(1), { state: 'cancelled', reason: 'r'.repeat(5_000) }, T0).reason).toBe('r'.repeat(1_000));
      });

      it('refuses invalid changes with invalid, writing nothing', async () => {
        const store = await openWith();
        const created = store.createDispatch(newDispatch(1), T0);
        const bad: Array<{ what: string; change: Parameters<DispatchStore['updateDispatch']>[1]; nowMs?: number; says: RegExp }> = [
          { what: 'setpoint NaN', change: { setpoints: { 'bat-1': Number.NaN } }, says: /setpoints/ },
          { what: 'setpoints null', change: { setpoints: null as unknown as Record<string, number> }, says: /setpoints/ },
          { what: 'setpoint id too long', change: { setpoints: { ['d'.repeat(65)]: 1 } }, says: /setpoints/ },
          { what: 'lastLoopAtMs fractional', change: { lastLoopAtMs: 1.5 }, says: /lastLoopAtMs/ },
          { what: 'lastLoopAtMs unsafe', change: { lastLoopAtMs: 1e20 }, says: /lastLoopAtMs/ },
          { what: 'reason a number', change: { reason: 5 as unknown as string }, says: /reason/ },
          { what: 'nowMs NaN', change: { state: 'active' }, nowMs: Number.NaN, says: /nowMs/ },
        ];
        for (const { what, change, nowMs, says } of bad) {
          const error = expectStoreError(() => store.updateDispatch(uuid(1), { state: 'active', ...change }, nowMs ?? T0 + 1), 'invalid');
          expect(error.message, what).toMatch(says);
        }
        expect(store.getDispatch(uuid(1))).toEqual(created);
      });
    });

    describe('listing', () => {
      it('lists newest first (by creation, then id), by state, in pages with opaque cursors', async () => {
        const store = await openWith();
        for (let n = 1; n <= 7; n++) store.createDispatch(newDispatch(n), T0 + (n <= 4 ? 0 : n));
        for (const n of [2, 5, 7]) store.updateDispatch(uuid(n), { state: 'active' }, T0 + 10);
        store.updateDispatch(uuid(3), { state: 'cancelled' }, T0 + 10);
        const all = [7, 6, 5, 4, 3, 2, 1].map(uuid);

        const first = store.listDispatches({ limit: 3 });
        expect(first.dispatches.map((d) => d.id)).toEqual(all.slice(0, 3));
        expect(first.dispatches[0]).toEqual(store.getDispatch(uuid(7)));
        expect(first.next).toEqual(expect.any(String));
        const second = store.listDispatches({ limit: 3, before: first.next! });
        expect(second.dispatches.map((d) => d.id)).toEqual(all.slice(3, 6));
        const third = store.listDispatches({ limit: 3, before: second.next! });
        expect(third).toEqual({ dispatches: [store.getDispatch(uuid(1))], next: null });
        expect(store.listDispatches({ limit: 7 }).next).toBeNull();

        const active = store.listDispatches({ state: 'active', limit: 2 });
        expect(active.dispatches.map((d) => d.id)).toEqual([uuid(7), uuid(5)]);
        expect(store.listDispatches({ state: 'active', limit: 2, before: active.next! })).toEqual({ dispatches: [store.getDispatch(uuid(2))], next: null });
        expect(store.listDispatches({ state: 'scheduled', limit: 10 }).dispatches.map((d) => d.id)).toEqual([uuid(6), uuid(4), uuid(1)]);
        expect(store.listDispatches({ state: 'cancelled', limit: 10 }).dispatches.map((d) => d.id)).toEqual([uuid(3)]);
        expect(store.listDispatches({ state: 'failed', limit: 10 })).toEqual({ dispatches: [], next: null });
      });

      it('refuses a bad limit, state or cursor with invalid', async () => {
        const store = await openWith();
        store.createDispatch(newDispatch(1), T0);
        for (const limit of [0, -1, 1.5, 1_001, Number.NaN]) expectStoreError(() => store.listDispatches({ limit }), 'invalid');
        expect(store.listDispatches({ limit: 1_000 }).dispatches).toHaveLength(1);
        expectStoreError(() => store.listDispatches({ limit: 10, state: 'paused' as DispatchState }), 'invalid');
        const forged = Buffer.from(JSON.stringify([T0, 'x', 1])).toString('base64url');
        for (const before of ['', 'not a cursor', forged, Buffer.from('[1.5,"x"]').toString('base64url'), 'x'.repeat(500)]) {
          expectStoreError(() => store.listDispatches({ limit: 10, before }), 'invalid');
        }
      });
    });

    describe('samples', () => {
      it('lists samples in time order, from fromMs inclusive, at most limit', async () => {
        const store = await openWith();
        store.createDispatch(newDispatch(1), T0);
        store.createDispatch(newDispatch(2), T0);
        for (const atMs of [T0 + 3_000, T0 + 1_000, T0 + 2_000, T0 + 4_000]) store.addDispatchSample(uuid(1), sample(atMs, { measuredW: atMs - T0 }));
        store.addDispatchSample(uuid(2), sample(T0 + 1_500));

        expect(store.listDispatchSamples(uuid(1), { limit: 10 })).toEqual([1_000, 2_000, 3_000, 4_000].map((d) => sample(T0 + d, { measuredW: d })));
        expect(store.listDispatchSamples(uuid(1), { fromMs: T0 + 2_000, limit: 10 }).map((s) => s.atMs)).toEqual([T0 + 2_000, T0 + 3_000, T0 + 4_000]);
        expect(store.listDispatchSamples(uuid(1), { fromMs: T0 + 1_001, limit: 2 }).map((s) => s.atMs)).toEqual([T0 + 2_000, T0 + 3_000]);
        expect(store.listDispatchSamples(uuid(2), { limit: 10 })).toEqual([sample(T0 + 1_500)]);
        expect(store.listDispatchSamples(uuid(3), { limit: 10 })).toEqual([]);
        for (const limit of [0, 100_001, 1.5]) expectStoreError(() => store.listDispatchSamples(uuid(1), { limit }), 'invalid');
        expectStoreError(() => store.listDispatchSamples(uuid(1), { fromMs: 1.5, limit: 1 }), 'invalid');
        expect(store.listDispatchSamples(uuid(1), { limit: 100_000 })).toHaveLength(4);
      });

      it('replaces the sample at the same time', async () => {
        const store = await openWith();
        store.createDispatch(newDispatch(1), T0);
        store.addDispatchSample(uuid(1), sample(T0 + 1_000));
        const replacement = sample(T0 + 1_000, { targetW: -3_000, measuredW: -2_999.5, confidence: 0.25, devicesReporting: 7 });
        store.addDispatchSample(uuid(1), replacement);
        expect(store.listDispatchSamples(uuid(1), { limit: 10 })).toEqual([replacement]);
      });

      it('refuses a sample of an unknown dispatch with not-found and bad figures with invalid, writing nothing', async () => {
        const store = await openWith();
        expectStoreError(() => store.addDispatchSample(uuid(1), sample(T0)), 'not-found');
        store.createDispatch(newDispatch(1), T0);
        const bad: Array<[string, DispatchSample, RegExp]> = [
          ['atMs fractional', sample(T0 + 0.5), /atMs/],
          ['atMs unsafe', sample(1e20), /atMs/],
          ['targetW NaN', sample(T0, { targetW: Number.NaN }), /targetW/],
          ['measuredW infinite', sample(T0, { measuredW: Number.POSITIVE_INFINITY }), /measuredW/],
          ['confidence NaN', sample(T0, { confidence: Number.NaN }), /confidence/],
          ['devicesReporting fractional', sample(T0, { devicesReporting: 1.5 }), /devicesReporting/],
          ['devicesReporting negative', sample(T0, { devicesReporting: -1 }), /devicesReporting/],
        ];
        for (const [what, s, says] of bad) expect(expectStoreError(() => store.addDispatchSample(uuid(1), s), 'invalid').message, what).toMatch(says);
        expect(store.listDispatchSamples(uuid(1), { limit: 10 })).toEqual([]);
      });

      it('keeps at most the bound per dispatch, deleting the oldest first, and leaves other dispatches alone', async () => {
        const bound = 5;
        const store = await openWith({ maxSamplesPerDispatch: bound });
        store.createDispatch(newDispatch(1), T0);
        store.createDispatch(newDispatch(2), T0);
        for (let i = 0; i < 3; i++) store.addDispatchSample(uuid(2), sample(T0 + i));
        const times = (id: string) => store.listDispatchSamples(id, { limit: 100 }).map((s) => s.atMs - T0);

        for (let i = 1; i <= 12; i++) {
          store.addDispatchSample(uuid(1), sample(T0 + i * 1_000));
          const kept = Array.from({ length: Math.min(i, bound) }, (_, k) => (i - Math.min(i, bound) + 1 + k) * 1_000);
          expect(times(uuid(1)), `after ${i}`).toEqual(kept);
        }
        // A late sample older than every kept one is itself the oldest, so it goes at once.
        store.addDispatchSample(uuid(1), sample(T0 + 500));
        expect(times(uuid(1))).toEqual([8_000, 9_000, 10_000, 11_000, 12_000]);
        // A late one inside the window pushes out the oldest.
        store.addDispatchSample(uuid(1), sample(T0 + 8_500));
        expect(times(uuid(1))).toEqual([8_500, 9_000, 10_000, 11_000, 12_000]);
        // Replacing a kept sample deletes nothing.
        store.addDispatchSample(uuid(1), sample(T0 + 9_000, { measuredW: 1 }));
        expect(times(uuid(1))).toEqual([8_500, 9_000, 10_000, 11_000, 12_000]);
        expect(times(uuid(2))).toEqual([0, 1, 2]);
      });
    });
  });
}
