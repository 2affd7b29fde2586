/** Contract of TwinStore, run by every implementation against a fresh, empty store per test. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceState, TwinStore } from '../types.ts';
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
      online: true,
      status: { online: true, firmware: '1.4.2', extra: { nested: [1, 'two', null] } },
    };
    const empty: DeviceState = {
      deviceId: 'dev-2',
      lastTs: null,
      lastSeenMs: null,
      lastSeq: null,
      metrics: {},
      online: false,
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
      const next: DeviceState = { ...full, lastSeq: 43, metrics: { socPct: 63 }, online: false, status: { online: false } };
      twins.saveDeviceStates([next]);
      expect(twins.getDeviceState('dev-1')).toEqual(next);
      expect(twins.listDeviceStates()).toHaveLength(1);
    });

    it('applies the last of several states of one device saved in one call', () => {
      twins.saveDeviceStates([full, { ...full, lastSeq: 50 }]);
      expect(twins.getDeviceState('dev-1')?.lastSeq).toBe(50);
    });

    it('lists all states by device id, or only the requested ones', () => {
      const third: DeviceState = { ...empty, deviceId: 'dev-0', online: true };
      twins.saveDeviceStates([full, empty, third]);
      expect(twins.listDeviceStates().map((s) => s.deviceId)).toEqual(['dev-0', 'dev-1', 'dev-2']);
      expect(twins.listDeviceStates(['dev-2', 'dev-0', 'unknown'])).toEqual([third, empty]);
      expect(twins.listDeviceStates([])).toEqual([]);
    });
  });
}
