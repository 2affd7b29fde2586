import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../store/index.ts';
import { Directory } from './directory.ts';

describe('Directory', () => {
  let store: SqliteStore;
  let loads = 0;
  beforeEach(() => {
    store = openSqliteStore({ file: ':memory:' });
    store.upsertSite({ id: 's1', region: 'north', name: 'one' });
    loads = 0;
    const listDevices = store.listDevices.bind(store);
    store.listDevices = (filter) => {
      loads++;
      return listDevices(filter);
    };
  });
  afterEach(() => store.close());

  it('finds a device provisioned after it was loaded, with its region and counts', () => {
    const directory = new Directory(store);
    expect(directory.findDevice('d1')).toBeUndefined();
    store.createDevice({ id: 'd1', type: 'meter', siteId: 's1', secretHash: 'x' }, 0);
    store.createDevice({ id: 'd2', type: 'solar', siteId: 's1', secretHash: 'x' }, 0);
    expect(directory.findDevice('d1')).toEqual({ id: 'd1', type: 'meter', siteId: 's1' });
    expect(directory.findDevice('d2')).toEqual({ id: 'd2', type: 'solar', siteId: 's1' });
    expect(directory.regionOf('s1')).toBe('north');
    expect(directory.deviceCounts().byRegion.get('north')).toBe(2);
    // One reload served both new devices.
    expect(loads).toBe(2);
  });

  it('does not reload the registry for unknown ids while it is unchanged', () => {
    const directory = new Directory(store);
    for (let i = 0; i < 10; i++) expect(directory.findDevice(`ghost-${i}`)).toBeUndefined();
    directory.refresh();
    expect(loads).toBe(1);
  });

  it('forgets a revoked device at the next refresh', () => {
    store.createDevice({ id: 'd1', type: 'meter', siteId: 's1', secretHash: 'x' }, 0);
    const directory = new Directory(store);
    store.revokeDevice('d1', 1);
    directory.refresh();
    expect(directory.findDevice('d1')).toBeUndefined();
    expect(directory.deviceCounts().fleet).toBe(0);
  });
});
