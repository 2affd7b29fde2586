/**
 * The platform's store with its time series in InfluxDB: everything is the
 * SQLite store's (registry, twins, dead letters, alerts, commands,
 * dispatches, tokens, audit) except telemetry and rollups.
 */
import type { PruneCounts } from './sqlite-rollups.ts';
import type { SqliteStore } from './sqlite-store.ts';
import type { DescribeDevice, DeviceDescription } from './influx-schema.ts';
import type { InfluxTelemetry } from './influx-telemetry.ts';
import type { Registry } from './types.ts';

/**
 * A SqliteStore whose TelemetryStore methods go to `timeSeries`:
 * - writeTelemetry, writeRollups, queryTelemetry, queryRollups, queryRollupColumns: InfluxDB;
 * - checkHealth: both (ingest writes twins and dead letters to SQLite
 *   beside telemetry, so either failing means it cannot commit);
 * - pruneTelemetry, pruneRollups, compactTelemetry: nothing to do (0), since
 *   the InfluxDB server deletes old points by its retention policy;
 * - close: both, InfluxDB first;
 * - `telemetry` (the port object): the InfluxDB store.
 * Every other member is the SQLite store's own, reached through the
 * prototype, so anything handed `store` for any port gets the right one.
 */
export function withTimeSeriesIn(sqlite: SqliteStore, timeSeries: InfluxTelemetry): SqliteStore {
  const noPrune: PruneCounts = { '1m': 0, '15m': 0, '1h': 0 };
  const composite = Object.create(sqlite) as SqliteStore;
  Object.defineProperties(composite, {
    telemetry: { value: timeSeries, enumerable: true },
    writeTelemetry: { value: timeSeries.writeTelemetry.bind(timeSeries) },
    writeRollups: { value: timeSeries.writeRollups.bind(timeSeries) },
    queryTelemetry: { value: timeSeries.queryTelemetry.bind(timeSeries) },
    queryRollups: { value: timeSeries.queryRollups.bind(timeSeries) },
    queryRollupColumns: { value: timeSeries.queryRollupColumns.bind(timeSeries) },
    checkHealth: {
      value: async (): Promise<void> => {
        await sqlite.checkHealth();
        await timeSeries.checkHealth();
      },
    },
    pruneTelemetry: { value: async (): Promise<number> => 0 },
    pruneRollups: { value: async (): Promise<PruneCounts> => ({ ...noPrune }) },
    compactTelemetry: { value: (): number => 0 },
    close: {
      value: async (): Promise<void> => {
        try {
          await timeSeries.close();
        } finally {
          await sqlite.close();
        }
      },
    },
  });
  return composite;
}

/**
 * describeDevice for the InfluxDB store, from the registry: a device's type,
 * its site and the site's region, revoked devices included (their history is
 * still read). Answers are kept until the registry's change token moves,
 * which is checked at most once per `recheckMs` (by `clock`), so a batch of
 * thousands of devices costs no registry reads; a site moved to another
 * region is seen within recheckMs.
 */
export function describeDevicesFrom(registry: Pick<Registry, 'getDevice' | 'getSite' | 'changeToken'>, clock: () => number, recheckMs = 1_000): DescribeDevice {
  const known = new Map<string, DeviceDescription>();
  let token: string | undefined;
  let checkedAtMs = -Infinity;
  return (deviceId) => {
    const now = clock();
    if (now - checkedAtMs >= recheckMs) {
      checkedAtMs = now;
      const current = registry.changeToken();
      if (current !== token) {
        token = current;
        known.clear();
      }
    }
    const cached = known.get(deviceId);
    if (cached !== undefined) return cached;
    const device = registry.getDevice(deviceId);
    if (device === undefined) return undefined;
    const site = registry.getSite(device.siteId);
    if (site === undefined) return undefined;
    const description: DeviceDescription = { type: device.type, siteId: device.siteId, region: site.region };
    known.set(deviceId, description);
    return description;
  };
}
