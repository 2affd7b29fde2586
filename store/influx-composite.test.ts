/**
 * The platform's store with time series in InfluxDB (a real influxd) and
 * everything else in SQLite (a real file): which calls go where, health of
 * both, closing both; and describing devices from the registry.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startInfluxd, type RunningInfluxd } from '../test/support/influx-servers.ts';
import { freePort } from '../test/support/processes.ts';
import { describeDevicesFrom, withTimeSeriesIn } from './influx-composite.ts';
import { InfluxTelemetry } from './influx-telemetry.ts';
import { silenceInfluxClient } from './influx-test-support.ts';
import { openTempStore } from './test-store-files.ts';
import { StoreError, type SqliteStore } from './index.ts';

const MINUTE_MS = 60_000;

let influxd: RunningInfluxd;

beforeAll(async () => {
  silenceInfluxClient();
  influxd = await startInfluxd();
}, 60_000);

afterAll(async () => {
  await influxd?.stop();
});

describe('withTimeSeriesIn', () => {
  let sqlite: { store: SqliteStore; close(): Promise<void> };
  let composite: SqliteStore;
  let database: string;

  afterEach(async () => {
    await composite.close();
    await sqlite.close();
  });

  async function open(url = influxd.url): Promise<void> {
    sqlite = await openTempStore('vpp-influx-composite-');
    database = await influxd.createDatabase();
    const influx = new InfluxTelemetry({ url, bucket: database, describeDevice: describeDevicesFrom(sqlite.store, Date.now), write: { maxRetries: 0 } });
    composite = withTimeSeriesIn(sqlite.store, influx);
  }

  it('sends telemetry and rollups to InfluxDB and keeps every other port in SQLite', async () => {
    await open();
    composite.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
    composite.createDevice({ id: 'bat-1', type: 'battery', siteId: 'site-1', secretHash: 'x' }, 1);
    expect(sqlite.store.getDevice('bat-1')?.type).toBe('battery');

    const ts = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 5 * MINUTE_MS;
    const point = { deviceId: 'bat-1', ts, seq: 3, metrics: { powerW: -1500, socPct: 40 } };
    expect(await composite.writeTelemetry([point])).toEqual({ inserted: [true] });
    const rollup = { kind: 'site' as const, entityId: 'site-1', metric: 'powerW', bucketStartMs: ts, min: -1500, max: -1500, mean: -1500, last: -1500, count: 1, devicesReporting: 1, devicesTotal: 1 };
    await composite.writeRollups([rollup]);

    expect(await composite.queryTelemetry({ deviceId: 'bat-1', fromMs: ts, toMs: ts + 1, limit: 10 })).toEqual([point]);
    expect(await composite.queryRollups({ kind: 'site', entityId: 'site-1', fromMs: ts, toMs: ts + MINUTE_MS, bucketMs: MINUTE_MS })).toEqual([rollup]);
    expect(composite.telemetry).toBeInstanceOf(InfluxTelemetry);
    // SQLite's own tables got nothing.
    expect(await sqlite.store.queryTelemetry({ deviceId: 'bat-1', fromMs: 0, toMs: ts + 1, limit: 10 })).toEqual([]);
    expect(await sqlite.store.queryRollups({ kind: 'site', entityId: 'site-1', fromMs: 0, toMs: ts + MINUTE_MS, bucketMs: MINUTE_MS })).toEqual([]);
    // Tags from the registry, as stored in InfluxDB.
    const response = await fetch(`${influxd.url}/query`, { method: 'POST', body: new URLSearchParams({ db: database, q: 'SELECT "seq", "region", "site" FROM "battery"' }) });
    const body = (await response.json()) as { results: Array<{ series: Array<{ values: unknown[][] }> }> };
    expect(body.results[0]!.series[0]!.values[0]!.slice(1)).toEqual([3, 'north', 'site-1']);

    // Retention is the server's: nothing to prune here, nothing to compact.
    expect(await composite.pruneTelemetry(ts + 365 * 86_400_000)).toBe(0);
    expect(await composite.pruneRollups(ts + 365 * 86_400_000)).toEqual({ '1m': 0, '15m': 0, '1h': 0 });
    expect(composite.compactTelemetry()).toBe(0);
    expect(await composite.queryTelemetry({ deviceId: 'bat-1', fromMs: ts, toMs: ts + 1, limit: 10 })).toEqual([point]);

    // Twins, dead letters and the rest are SQLite's.
    composite.saveDeviceStates([{ deviceId: 'bat-1', lastTs: ts, lastSeenMs: ts, lastSeq: 3, metrics: point.metrics, presence: 'online', presenceSinceMs: ts, status: null }]);
    expect(sqlite.store.getDeviceState('bat-1')?.lastSeq).toBe(3);
    expect(composite.alerts).toBe(sqlite.store.alerts);
  });

  it('is healthy only when both are, and close closes both', async () => {
    await open();
    await composite.checkHealth();
    await composite.close();
    const afterClose = await composite.writeTelemetry([]).catch((e: unknown) => e);
    expect((afterClose as StoreError).code).toBe('unavailable');
    expect(() => sqlite.store.getDevice('x')).toThrow(expect.objectContaining({ code: 'unavailable' }));
  });

  it('reports InfluxDB down in its health while SQLite is fine', async () => {
    await open(`http://127.0.0.1:${await freePort()}`);
    await sqlite.store.checkHealth();
    const error = await composite.checkHealth().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('unavailable');
  });
});

describe('describeDevicesFrom', () => {
  it("describes a device by the registry's type, site and region, and sees a change once the change token moved and the recheck interval passed", async () => {
    const { store, close } = await openTempStore('vpp-influx-describe-');
    try {
      let now = 0;
      store.upsertSite({ id: 's1', region: 'north', name: 'S1' });
      store.createDevice({ id: 'pv-1', type: 'solar', siteId: 's1', secretHash: 'x' }, 1);
      const describe = describeDevicesFrom(store, () => now, 1_000);
      expect(describe('pv-1')).toEqual({ type: 'solar', siteId: 's1', region: 'north' });
      expect(describe('nobody')).toBeUndefined();

      store.upsertSite({ id: 's1', region: 'south', name: 'S1' });
      // Kept until the recheck interval has passed…
      now = 999;
      expect(describe('pv-1')?.region).toBe('north');
      // …then the moved token clears what was kept.
      now = 1_000;
      expect(describe('pv-1')?.region).toBe('south');
      // A revoked device is still described: its history is still read.
      store.revokeDevice('pv-1', 2);
      now = 2_000;
      expect(describe('pv-1')?.type).toBe('solar');
    } finally {
      await close();
    }
  });
});
