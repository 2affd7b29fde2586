/** Contract of Registry, run by every implementation against a fresh, empty store per test. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError, type NewDevice, type Registry } from '../types.ts';
import type { OpenStore } from './open-store.ts';

function storeErrorOf(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    return error as StoreError;
  }
  throw new Error('expected a StoreError, nothing was thrown');
}

export function describeRegistryContract(name: string, open: OpenStore<Registry>): void {
  describe(`Registry contract: ${name}`, () => {
    let registry: Registry;
    let close: () => Promise<void>;

    beforeEach(async () => {
      ({ store: registry, close } = await open());
    });

    afterEach(async () => {
      await close();
    });

    function device(id: string, siteId: string, type: NewDevice['type'] = 'battery'): NewDevice {
      return { id, type, siteId, secretHash: `hash-of-${id}` };
    }

    it('changes its change token when devices or sites change', () => {
      const before = registry.changeToken();
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      const afterSite = registry.changeToken();
      expect(afterSite).not.toBe(before);
      registry.createDevice(device('dev-1', 'site-1'), 1);
      const afterCreate = registry.changeToken();
      expect(afterCreate).not.toBe(afterSite);
      registry.revokeDevice('dev-1', 2);
      expect(registry.changeToken()).not.toBe(afterCreate);
    });

    it('creates, updates, gets and lists sites', () => {
      registry.upsertSite({ id: 'site-2', region: 'south', name: 'Two' });
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.upsertSite({ id: 'site-1', region: 'east', name: 'One, moved' });
      expect(registry.getSite('site-1')).toEqual({ id: 'site-1', region: 'east', name: 'One, moved' });
      expect(registry.getSite('site-9')).toBeUndefined();
      expect(registry.listSites()).toEqual([
        { id: 'site-1', region: 'east', name: 'One, moved' },
        { id: 'site-2', region: 'south', name: 'Two' },
      ]);
    });

    it('creates devices and reads them back, by id and by site', () => {
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.upsertSite({ id: 'site-2', region: 'north', name: 'Two' });
      const created = registry.createDevice(device('site-1-battery', 'site-1'), 1_000);
      expect(created).toEqual({ id: 'site-1-battery', type: 'battery', siteId: 'site-1', createdAtMs: 1_000, revokedAtMs: null });
      registry.createDevice(device('site-1-solar', 'site-1', 'solar'), 2_000);
      registry.createDevice(device('site-2-meter', 'site-2', 'meter'), 3_000);

      expect(registry.getDevice('site-1-battery')).toEqual(created);
      expect(registry.getDevice('nope')).toBeUndefined();
      expect(registry.listDevices().map((d) => d.id)).toEqual(['site-1-battery', 'site-1-solar', 'site-2-meter']);
      expect(registry.listDevices({ siteId: 'site-1' }).map((d) => [d.id, d.type])).toEqual([
        ['site-1-battery', 'battery'],
        ['site-1-solar', 'solar'],
      ]);
      expect(registry.listDevices({ siteId: 'site-9' })).toEqual([]);
    });

    it('refuses a duplicate device id with conflict, and keeps the first device', () => {
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.createDevice(device('dev-1', 'site-1'), 1_000);
      const error = storeErrorOf(() => registry.createDevice({ ...device('dev-1', 'site-1', 'solar'), secretHash: 'other' }, 2_000));
      expect(error.code).toBe('conflict');
      expect(registry.getDevice('dev-1')?.type).toBe('battery');
      expect(registry.getAcceptedSecretHashes('dev-1', 2_000)).toEqual(['hash-of-dev-1']);
    });

    it('refuses a device of an unknown site with not-found, and creates nothing', () => {
      const error = storeErrorOf(() => registry.createDevice(device('dev-1', 'site-404'), 1_000));
      expect(error.code).toBe('not-found');
      expect(registry.getDevice('dev-1')).toBeUndefined();
    });

    it('accepts no secret of a revoked or unknown device; revoking twice or an unknown device returns false', () => {
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.createDevice(device('dev-1', 'site-1'), 1_000);
      expect(registry.getAcceptedSecretHashes('dev-1', 1_000)).toEqual(['hash-of-dev-1']);
      expect(registry.getAcceptedSecretHashes('unknown', 1_000)).toEqual([]);

      expect(registry.revokeDevice('dev-1', 5_000)).toBe(true);
      expect(registry.getAcceptedSecretHashes('dev-1', 5_000)).toEqual([]);
      expect(registry.getDevice('dev-1')?.revokedAtMs).toBe(5_000);
      expect(registry.revokeDevice('dev-1', 6_000)).toBe(false);
      expect(registry.getDevice('dev-1')?.revokedAtMs).toBe(5_000);
      expect(registry.revokeDevice('unknown', 6_000)).toBe(false);
    });

    it('accepts no secret of a device revoked during a grace period, neither the new one nor the previous one', () => {
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.createDevice(device('dev-1', 'site-1'), 1_000);
      registry.rotateDeviceSecret('dev-1', 'h2', 10_000);
      expect(registry.getAcceptedSecretHashes('dev-1', 2_000)).toEqual(['h2', 'hash-of-dev-1']);
      registry.revokeDevice('dev-1', 3_000);
      expect(registry.getAcceptedSecretHashes('dev-1', 4_000)).toEqual([]);
    });

    it('resets a secret at once, without lifting a revocation; an unknown device is not-found', () => {
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.createDevice(device('dev-1', 'site-1'), 1_000);
      registry.resetDeviceSecret('dev-1', 'new-hash');
      expect(registry.getAcceptedSecretHashes('dev-1', 2_000)).toEqual(['new-hash']);

      registry.revokeDevice('dev-1', 5_000);
      registry.resetDeviceSecret('dev-1', 'newer-hash');
      expect(registry.getDevice('dev-1')?.revokedAtMs).toBe(5_000);
      expect(registry.getAcceptedSecretHashes('dev-1', 6_000)).toEqual([]);
      expect(registry.countActiveDevices().fleet).toBe(0);
      expect(storeErrorOf(() => registry.resetDeviceSecret('unknown', 'x')).code).toBe('not-found');
    });

    it('ends a grace period when the secret is reset', () => {
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.createDevice(device('dev-1', 'site-1'), 1_000);
      registry.rotateDeviceSecret('dev-1', 'h2', 10_000);
      registry.resetDeviceSecret('dev-1', 'h3');
      expect(registry.getAcceptedSecretHashes('dev-1', 2_000)).toEqual(['h3']);
    });

    it('rotates a secret: both are accepted until the grace period ends, then only the new one', () => {
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.createDevice(device('dev-1', 'site-1'), 1_000);
      const before = registry.changeToken();
      registry.rotateDeviceSecret('dev-1', 'h2', 10_000);
      expect(registry.changeToken()).not.toBe(before);
      expect(registry.getAcceptedSecretHashes('dev-1', 2_000)).toEqual(['h2', 'hash-of-dev-1']);
      expect(registry.getAcceptedSecretHashes('dev-1', 9_999)).toEqual(['h2', 'hash-of-dev-1']);
      expect(registry.getAcceptedSecretHashes('dev-1', 10_000)).toEqual(['h2']);
      expect(registry.getAcceptedSecretHashes('dev-1', 50_000)).toEqual(['h2']);
      expect(registry.getDevice('dev-1')).toEqual({ id: 'dev-1', type: 'battery', siteId: 'site-1', createdAtMs: 1_000, revokedAtMs: null });
    });

    it('rotates twice: the second rotation keeps only the then-current secret as the previous one', () => {
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.createDevice(device('dev-1', 'site-1'), 1_000);
      registry.rotateDeviceSecret('dev-1', 'h2', 10_000);
      registry.rotateDeviceSecret('dev-1', 'h3', 20_000);
      expect(registry.getAcceptedSecretHashes('dev-1', 5_000)).toEqual(['h3', 'h2']);
      expect(registry.getAcceptedSecretHashes('dev-1', 15_000)).toEqual(['h3', 'h2']);
      expect(registry.getAcceptedSecretHashes('dev-1', 20_000)).toEqual(['h3']);
    });

    it('refuses to rotate the secret of an unknown device with not-found and of a revoked one with conflict, changing nothing', () => {
      registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
      registry.createDevice(device('dev-1', 'site-1'), 1_000);
      expect(storeErrorOf(() => registry.rotateDeviceSecret('unknown', 'h2', 10_000)).code).toBe('not-found');
      expect(registry.getDevice('unknown')).toBeUndefined();

      registry.revokeDevice('dev-1', 2_000);
      expect(storeErrorOf(() => registry.rotateDeviceSecret('dev-1', 'h2', 10_000)).code).toBe('conflict');
      expect(registry.getDevice('dev-1')?.revokedAtMs).toBe(2_000);
      expect(registry.getAcceptedSecretHashes('dev-1', 3_000)).toEqual([]);
    });

    it('counts active devices per site, per region and in the fleet', () => {
      registry.upsertSite({ id: 'n1', region: 'north', name: 'N1' });
      registry.upsertSite({ id: 'n2', region: 'north', name: 'N2' });
      registry.upsertSite({ id: 's1', region: 'south', name: 'S1' });
      for (const [id, site] of [
        ['n1-a', 'n1'],
        ['n1-b', 'n1'],
        ['n1-c', 'n1'],
        ['n2-a', 'n2'],
        ['s1-a', 's1'],
        ['s1-b', 's1'],
      ] as const) {
        registry.createDevice(device(id, site), 1_000);
      }
      registry.revokeDevice('n1-c', 2_000);
      registry.revokeDevice('s1-a', 2_000);

      const counts = registry.countActiveDevices();
      expect(counts.fleet).toBe(4);
      expect(counts.bySite.get('n1')).toBe(2);
      expect(counts.bySite.get('n2')).toBe(1);
      expect(counts.bySite.get('s1')).toBe(1);
      expect(counts.byRegion.get('north')).toBe(3);
      expect(counts.byRegion.get('south')).toBe(1);

      // Provisioning a revoked device again does not bring it back.
      registry.resetDeviceSecret('n1-c', 'again');
      expect(registry.countActiveDevices().byRegion.get('north')).toBe(3);
    });

    it('counts nothing in an empty fleet', () => {
      const counts = registry.countActiveDevices();
      expect(counts.fleet).toBe(0);
      expect([...counts.bySite.values()].every((n) => n === 0)).toBe(true);
    });
  });
}
