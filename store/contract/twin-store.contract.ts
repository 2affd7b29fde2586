/** Contract of TwinStore, run by every implementation against a fresh, empty store per test. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, type DeviceState, type TwinStore } from '../types.ts';
import type { OpenStore } from './open-store.ts';

export function describeTwinStoreContract(name: string, open: OpenStore<TwinStore>): void {
  describe(`TwinStore contract: ${name}`, () => {
    let twins: TwinStore;
    let close: () => Promise<void>;

    beforeEach(async () => {
      ({ store: twins, close } = await open());
    });

    afterEach(async () => {
      await close();
    });

    const full: DeviceState = {
      deviceId: 'dev-1',
      lastTs: 1_700_000_000_123,
      lastSeenMs: 1_700_000_000_456,
      lastSeq: 42,
      metrics: { powerW: -3200.5, socPct: 62.5 },
      presence: 'online',
      presenceSinceMs: 1_700_000_000_000,
      status: { online: true, firmware: '1.4.2', extra: { nested: [1, 'two', null] } },
    };
    const empty: DeviceState = {
      deviceId: 'dev-2',
      lastTs: null,
      lastSeenMs: null,
      lastSeq: null,
      metrics: {},
      presence: 'offline',
      presenceSinceMs: null,
      status: null,
    };

    it('round-trips whole states, including nulls and nested status', () => {
      twins.saveDeviceStates([full, empty]);
      expect(twins.getDeviceState('dev-1')).toEqual(full);
      expect(twins.getDeviceState('dev-2')).toEqual(empty);
      expect(twins.getDeviceState('dev-3')).toBeUndefined();
    });

    it('upserts: a later save replaces the whole state', () => {
      twins.saveDeviceStates([full]);
      const next: DeviceState = {
        ...full,
        lastSeq: 43,
        metrics: { socPct: 63 },
        presence: 'offline',
        presenceSinceMs: 1_700_000_009_000,
        status: { online: false },
      };
      twins.saveDeviceStates([next]);
      expect(twins.getDeviceState('dev-1')).toEqual(next);
      expect(twins.listDeviceStates()).toHaveLength(1);
    });

    it('applies the last of several states of one device saved in one call', () => {
      twins.saveDeviceStates([full, { ...full, lastSeq: 50 }]);
      expect(twins.getDeviceState('dev-1')?.lastSeq).toBe(50);
    });

    it('lists all states by device id, or only the requested ones', () => {
      const third: DeviceState = { ...empty, deviceId: 'dev-0', presence: 'online', presenceSinceMs: 5 };
      twins.saveDeviceStates([full, empty, third]);
      expect(twins.listDeviceStates().map((s) => s.deviceId)).toEqual(['dev-0', 'dev-1', 'dev-2']);
      expect(twins.listDeviceStates(['dev-2', 'dev-0', 'unknown'])).toEqual([third, empty]);
      expect(twins.listDeviceStates([])).toEqual([]);
    });

    it('round-trips every presence with the time it began', () => {
      const states: DeviceState[] = [
        { ...empty, deviceId: 'dev-a', presence: 'online', presenceSinceMs: 1_000 },
        { ...empty, deviceId: 'dev-b', presence: 'stale', presenceSinceMs: 2_000 },
        { ...empty, deviceId: 'dev-c', presence: 'offline', presenceSinceMs: 3_000 },
        { ...empty, deviceId: 'dev-d', presence: 'offline', presenceSinceMs: null },
      ];
      twins.saveDeviceStates(states);
      expect(twins.listDeviceStates()).toEqual(states);
      twins.saveDeviceStates([{ ...states[0]!, presence: 'stale', presenceSinceMs: 4_000 }]);
      expect(twins.getDeviceState('dev-a')).toMatchObject({ presence: 'stale', presenceSinceMs: 4_000 });
    });

    it('refuses metrics or a status that cannot be serialised with invalid, keeps what was stored, and goes on working', () => {
      twins.saveDeviceStates([full]);
      const cyclic: Record<string, unknown> = { online: true };
      cyclic.self = cyclic;
      let deep: Record<string, unknown> = {};
      for (let i = 0; i < 200_000; i++) deep = { inner: deep };
      const bigint: Record<string, unknown> = { count: 10n };
      for (const status of [cyclic, deep, bigint]) {
        let error: unknown;
        try {
          twins.saveDeviceStates([{ ...full, lastSeq: 99, status }]);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).code).toBe('invalid');
      }
      const badMetrics = { ...full, lastSeq: 99, metrics: { powerW: 10n } as unknown as Record<string, number> };
      expect(() => twins.saveDeviceStates([badMetrics])).toThrow(expect.objectContaining({ code: 'invalid' }));
      expect(twins.getDeviceState('dev-1')).toEqual(full);
      twins.saveDeviceStates([{ ...full, lastSeq: 100 }]);
      expect(twins.getDeviceState('dev-1')?.lastSeq).toBe(100);
    });
  });
}
