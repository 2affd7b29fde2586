/**
 * A read-through cache of the registry for the hot path: which devices are
 * active, their type and site, each site's region and how many active devices
 * every site, region and the fleet has (for coverage). Refreshed on a timer
 * by the pipeline; a device provisioned in between is found on first sight,
 * because the registry is reloaded whenever its change token has moved.
 */
import type { DeviceCounts, Registry } from '../store/types.ts';
import type { DeviceRef } from './types.ts';

export class Directory {
  private devices = new Map<string, DeviceRef>();
  private regions = new Map<string, string>();
  private counts: DeviceCounts = { fleet: 0, bySite: new Map(), byRegion: new Map() };
  private loadedToken: string | undefined;

  constructor(private readonly registry: Registry) {
    this.refresh();
  }

  /** Reloads the registry when its change token moved since the last load. */
  refresh(): void {
    const token = this.registry.changeToken();
    if (token === this.loadedToken) return;
    const devices = new Map<string, DeviceRef>();
    for (const d of this.registry.listDevices()) {
      if (d.revokedAtMs === null) devices.set(d.id, { id: d.id, type: d.type, siteId: d.siteId });
    }
    const regions = new Map<string, string>();
    for (const site of this.registry.listSites()) regions.set(site.id, site.region);
    this.devices = devices;
    this.regions = regions;
    this.counts = this.registry.countActiveDevices();
    this.loadedToken = token;
  }

  /**
   * An active device. A device not in the cache may have been provisioned
   * since the last load: the registry is reloaded if its change token moved
   * (once for a whole provisioning batch; an unknown id only costs the token
   * check).
   */
  findDevice(deviceId: string): DeviceRef | undefined {
    const known = this.devices.get(deviceId);
    if (known) return known;
    this.refresh();
    return this.devices.get(deviceId);
  }

  /** The device when it is known to be active, without touching the registry. */
  cachedDevice(deviceId: string): DeviceRef | undefined {
    return this.devices.get(deviceId);
  }

  /** Every active device, as last loaded. */
  activeDevices(): IterableIterator<DeviceRef> {
    return this.devices.values();
  }

  regionOf(siteId: string): string | undefined {
    return this.regions.get(siteId);
  }

  sites(): IterableIterator<string> {
    return this.regions.keys();
  }

  deviceCounts(): DeviceCounts {
    return this.counts;
  }
}
