/**
 * The InfluxDB store against a real InfluxDB 1.x (Debian's influxd, started
 * on free loopback ports): the TelemetryStore contract and the merge part
 * of the rollup-tier contract, unchanged (the retention part is SQLite's:
 * InfluxDB's retention policy deletes old points), then what is particular
 * to InfluxDB: the schema as stored, refusals, error codes, retries, and a
 * write acknowledged only once the server confirmed it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startInfluxd, type RunningInfluxd } from '../test/support/influx-servers.ts';
import { freePort } from '../test/support/processes.ts';
import { describeRollupMergeContract, describeTelemetryStoreContract } from './contract/index.ts';
import { InfluxTelemetry, type InfluxTelemetryOptions } from './influx-telemetry.ts';
import { describeAnyDevice, holdWrite, silenceInfluxClient, startFaultyProxy, type FaultyProxy } from './influx-test-support.ts';
import { StoreError, type TelemetryPoint } from './types.ts';

const HOUR_MS = 3_600_000;
/** Quick retries, so failure paths take milliseconds. */
const FAST_RETRIES = { maxRetries: 2, minRetryDelayMs: 5, maxRetryDelayMs: 20, maxRetryTimeMs: 5_000 };

let influxd: RunningInfluxd;

beforeAll(async () => {
  silenceInfluxClient();
  influxd = await startInfluxd();
}, 60_000);

afterAll(async () => {
  await influxd?.stop();
});

/** A store on a fresh database of the test server; close drops the database. */
async function openStore(options: Partial<InfluxTelemetryOptions> = {}): Promise<{ store: InfluxTelemetry; database: string; close(): Promise<void> }> {
  const database = await influxd.createDatabase(`vpp_${randomUUID().replace(/-/g, '')}`);
  const store = new InfluxTelemetry({ url: influxd.url, bucket: database, describeDevice: describeAnyDevice, write: FAST_RETRIES, ...options });
  return {
    store,
    database,
    async close() {
      await store.close();
      await influxd.command(`DROP DATABASE "${database}"`);
    },
  };
}

/** InfluxQL straight to the server, as an operator would look. */
async function influxql(database: string, q: string): Promise<Array<{ name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }>> {
  const response = await fetch(`${influxd.url}/query`, { method: 'POST', body: new URLSearchParams({ db: database, q, epoch: 'ms' }) });
  const body = (await response.json()) as { results: Array<{ error?: string; series?: Array<{ name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }> }> };
  if (body.results[0]?.error) throw new Error(body.results[0].error);
  return body.results[0]?.series ?? [];
}

async function rawWrite(database: string, lines: string): Promise<number> {
  const response = await fetch(`${influxd.url}/write?db=${database}&precision=ms`, { method: 'POST', body: lines });
  await response.arrayBuffer();
  return response.status;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  return (error as StoreError).code;
}

describeTelemetryStoreContract('InfluxDB 1.x', () => openStore());
describeRollupMergeContract('InfluxDB 1.x', () => openStore());

describe('InfluxTelemetry on InfluxDB 1.x', () => {
  const t0 = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 2 * HOUR_MS;
  let opened: Awaited<ReturnType<typeof openStore>> | undefined;
  let proxy: FaultyProxy | undefined;

  afterEach(async () => {
    await opened?.close();
    opened = undefined;
    await proxy?.close();
    proxy = undefined;
  });

  it('runs against the InfluxDB the Debian package installs', () => {
    expect(influxd.version).toMatch(/^1\./);
  });

  it('leaves retention to the server: there is nothing to prune through the store', async () => {
    opened = await openStore();
    expect('pruneTelemetry' in opened.store).toBe(false);
    expect('pruneRollups' in opened.store).toBe(false);
  });

  it('stores a measurement per device type, device/site/region as tags, metrics as float fields and seq as an integer, in milliseconds', async () => {
    const kinds = { 'bat-1': 'battery', 'pv-1': 'solar', 'm-1': 'meter' } as const;
    opened = await openStore({
      describeDevice: (id) => (id in kinds ? { type: kinds[id as keyof typeof kinds], siteId: 'site-7', region: 'north east' } : undefined),
    });
    const { store, database } = opened;
    await store.writeTelemetry([
      { deviceId: 'bat-1', ts: t0 + 1, seq: 42, metrics: { powerW: 5, socPct: 61.5 } },
      { deviceId: 'pv-1', ts: t0 + 2, seq: 7, metrics: { powerW: 1200 } },
      { deviceId: 'm-1', ts: t0 + 3, seq: 9, metrics: { gridW: -300 } },
    ]);
    await store.writeRollups([
      { kind: 'site', entityId: 'site-7', metric: 'powerW', bucketStartMs: t0, min: 1, max: 2, mean: 1.5, last: 2, count: 4, devicesReporting: 2, devicesTotal: 3 },
    ]);

    const measurements = (await influxql(database, 'SHOW MEASUREMENTS'))[0]!.values.flat();
    expect(measurements).toEqual(['battery', 'meter', 'rollups', 'solar']);
    const fields = (await influxql(database, 'SHOW FIELD KEYS FROM "battery"'))[0]!.values;
    expect(fields).toEqual([
      ['powerW', 'float'],
      ['seq', 'integer'],
      ['socPct', 'float'],
    ]);
    expect((await influxql(database, 'SHOW TAG KEYS FROM "battery"'))[0]!.values.flat()).toEqual(['device', 'region', 'site']);
    const [row] = await influxql(database, `SELECT * FROM "battery" WHERE "device" = 'bat-1'`);
    expect(row!.columns).toEqual(['time', 'device', 'powerW', 'region', 'seq', 'site', 'socPct']);
    expect(row!.values).toEqual([[t0 + 1, 'bat-1', 5, 'north east', 42, 'site-7', 61.5]]);

    expect((await influxql(database, 'SHOW TAG KEYS FROM "rollups"'))[0]!.values.flat()).toEqual(['entity', 'kind', 'metric']);
    expect(Object.fromEntries((await influxql(database, 'SHOW FIELD KEYS FROM "rollups"'))[0]!.values as Array<[string, string]>)).toEqual({
      count: 'integer',
      devices_reporting: 'integer',
      devices_total: 'integer',
      last: 'float',
      max: 'float',
      mean: 'float',
      min: 'float',
    });
  });

  it('refuses, before writing anything, a device the registry does not know, a reserved or unusable metric name, a value that is not finite, a time InfluxDB cannot hold', async () => {
    opened = await openStore({ describeDevice: (id) => (id.startsWith('known') ? { type: 'battery', siteId: 's', region: 'r' } : undefined) });
    const { store, database } = opened;
    const good: TelemetryPoint = { deviceId: 'known-1', ts: t0, seq: 1, metrics: { powerW: 1 } };
    const bad: TelemetryPoint[] = [
      { deviceId: 'stranger', ts: t0 + 1, seq: 2, metrics: { powerW: 1 } },
      { ...good, ts: t0 + 1, metrics: { seq: 3 } },
      { ...good, ts: t0 + 1, metrics: { time: 3 } },
      { ...good, ts: t0 + 1, metrics: { region: 3 } },
      { ...good, ts: t0 + 1, metrics: { 'power\nW': 3 } },
      { ...good, ts: t0 + 1, metrics: { powerW: Number.NaN } },
      { ...good, ts: t0 + 1, metrics: { powerW: Number.POSITIVE_INFINITY } },
      { ...good, ts: 9_300_000_000_000 },
      { ...good, deviceId: 'known\\' },
    ];
    for (const point of bad) expect(await codeOf(store.writeTelemetry([good, point]))).toBe('invalid');
    expect(await codeOf(store.writeRollups([{ kind: 'site', entityId: 's', metric: 'm', bucketStartMs: t0, min: 1, max: 1, mean: 1, last: 1, count: 1.5, devicesReporting: 1, devicesTotal: 1 }]))).toBe('invalid');
    expect(await influxql(database, 'SHOW MEASUREMENTS')).toEqual([]);
  });

  it("reads a device the registry no longer describes from every type's measurement", async () => {
    let known = true;
    opened = await openStore({ describeDevice: () => (known ? { type: 'solar', siteId: 's', region: 'r' } : undefined) });
    const point = { deviceId: 'pv-9', ts: t0, seq: 1, metrics: { powerW: 900 } };
    await opened.store.writeTelemetry([point]);
    known = false;
    expect(await opened.store.queryTelemetry({ deviceId: 'pv-9', fromMs: t0, toMs: t0 + 1, limit: 5 })).toEqual([point]);
  });

  it("answers 'invalid' when the server refuses the write with a 400 (a field of another type)", async () => {
    opened = await openStore({ describeDevice: () => ({ type: 'battery', siteId: 's', region: 'r' }) });
    expect(await rawWrite(opened.database, `battery,device=other powerW=1i ${t0}`)).toBe(204);
    const error = await opened.store.writeTelemetry([{ deviceId: 'b', ts: t0 + 5, seq: 1, metrics: { powerW: 2.5 } }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('invalid');
    expect((error as StoreError).message).toMatch(/HTTP 400.*field type conflict/);
  });

  it("answers 'unavailable' for a database that does not exist, in writes, reads and health", async () => {
    const store = new InfluxTelemetry({ url: influxd.url, bucket: 'no_such_database', describeDevice: describeAnyDevice, write: FAST_RETRIES });
    try {
      expect(await codeOf(store.writeTelemetry([{ deviceId: 'd', ts: t0, seq: 1, metrics: {} }]))).toBe('unavailable');
      expect(await codeOf(store.writeRollups([{ kind: 'fleet', entityId: 'fleet', metric: 'm', bucketStartMs: t0, min: 1, max: 1, mean: 1, last: 1, count: 1, devicesReporting: 1, devicesTotal: 1 }]))).toBe('unavailable');
      expect(await codeOf(store.queryRollups({ kind: 'fleet', entityId: 'fleet', fromMs: t0, toMs: t0 + HOUR_MS, bucketMs: 60_000 }))).toBe('unavailable');
      expect(await codeOf(store.checkHealth())).toBe('unavailable');
    } finally {
      await store.close();
    }
  });

  it("answers 'unavailable' when nothing listens, after the client's retries", async () => {
    const store = new InfluxTelemetry({ url: `http://127.0.0.1:${await freePort()}`, bucket: 'vpp', describeDevice: describeAnyDevice, reads: 'none', write: FAST_RETRIES });
    try {
      const error = await store.writeTelemetry([{ deviceId: 'd', ts: t0, seq: 1, metrics: { powerW: 1 } }]).catch((e: unknown) => e);
      expect((error as StoreError).code).toBe('unavailable');
      expect((error as StoreError).message).toMatch(/ECONNREFUSED/);
      expect(await codeOf(store.checkHealth())).toBe('unavailable');
    } finally {
      await store.close();
    }
  });

  it('retries a 503 and a 429 with backoff and resolves once the server took the write', async () => {
    opened = await openStore();
    proxy = await startFaultyProxy(influxd.url);
    const store = new InfluxTelemetry({ url: proxy.url, bucket: opened.database, describeDevice: describeAnyDevice, write: FAST_RETRIES });
    try {
      proxy.faults.push({ kind: 'status', status: 503 }, { kind: 'status', status: 429 });
      const point = { deviceId: 'retried', ts: t0, seq: 1, metrics: { powerW: 3 } };
      expect(await store.writeTelemetry([point])).toEqual({ inserted: [true] });
      expect(proxy.writes()).toBe(3);
      expect(await store.queryTelemetry({ deviceId: 'retried', fromMs: t0, toMs: t0 + 1, limit: 1 })).toEqual([point]);
    } finally {
      await store.close();
    }
  });

  it("rejects with 'unavailable' when every attempt gets a 5xx, and with 'invalid' at once for a 400", async () => {
    opened = await openStore();
    proxy = await startFaultyProxy(influxd.url);
    const store = new InfluxTelemetry({ url: proxy.url, bucket: opened.database, describeDevice: describeAnyDevice, write: FAST_RETRIES });
    try {
      proxy.faults.push(...[500, 502, 503].map((status) => ({ kind: 'status' as const, status })));
      expect(await codeOf(store.writeTelemetry([{ deviceId: 'down', ts: t0, seq: 1, metrics: { powerW: 1 } }]))).toBe('unavailable');
      expect(proxy.writes()).toBe(3);
      proxy.faults.push({ kind: 'status', status: 400 });
      expect(await codeOf(store.writeRollups([{ kind: 'fleet', entityId: 'fleet', metric: 'm', bucketStartMs: t0, min: 1, max: 1, mean: 1, last: 1, count: 1, devicesReporting: 1, devicesTotal: 1 }]))).toBe('invalid');
      expect(proxy.writes()).toBe(4);
    } finally {
      await store.close();
    }
  });

  it('does not resolve a write before the server answered it, and a close ends a write in flight', async () => {
    opened = await openStore();
    proxy = await startFaultyProxy(influxd.url);
    const store = new InfluxTelemetry({ url: proxy.url, bucket: opened.database, describeDevice: describeAnyDevice, write: FAST_RETRIES });
    try {
      const held = holdWrite();
      proxy.faults.push(held.fault);
      let settled = false;
      const write = store.writeTelemetry([{ deviceId: 'held', ts: t0, seq: 1, metrics: { powerW: 1 } }]).finally(() => (settled = true));
      // The server has stored the lines; only its answer is missing.
      await held.arrived;
      expect(settled).toBe(false);
      held.release();
      expect(await write).toEqual({ inserted: [true] });

      const second = holdWrite();
      proxy.faults.push(second.fault);
      const inFlight = store.writeTelemetry([{ deviceId: 'held', ts: t0 + 1, seq: 2, metrics: { powerW: 1 } }]);
      await second.arrived;
      await store.close();
      expect(await codeOf(inFlight)).toBe('unavailable');
      second.release();
    } finally {
      await store.close();
    }
  });

  it('reports new a point whose earlier write failed after the server stored it, so ingest counts it once', async () => {
    opened = await openStore();
    proxy = await startFaultyProxy(influxd.url);
    const store = new InfluxTelemetry({ url: proxy.url, bucket: opened.database, describeDevice: describeAnyDevice, write: { ...FAST_RETRIES, maxRetries: 0 } });
    try {
      const batch = [
        { deviceId: 'lost-answer', ts: t0, seq: 1, metrics: { powerW: 1 } },
        { deviceId: 'lost-answer', ts: t0 + 1000, seq: 2, metrics: { powerW: 2 } },
      ];
      proxy.faults.push({ kind: 'store-then-fail' });
      expect(await codeOf(store.writeTelemetry(batch))).toBe('unavailable');
      // The server has them, yet nobody was told they were new.
      expect(await opened.store.queryTelemetry({ deviceId: 'lost-answer', fromMs: t0, toMs: t0 + HOUR_MS, limit: 10 })).toEqual(batch);
      expect(await store.writeTelemetry(batch)).toEqual({ inserted: [true, true] });
      // Once confirmed, a redelivery is a duplicate again.
      expect(await store.writeTelemetry(batch)).toEqual({ inserted: [false, false] });
    } finally {
      await store.close();
    }
  });

  it('reads nothing before writing samples later than what it wrote, and looks up older ones', async () => {
    opened = await openStore();
    proxy = await startFaultyProxy(influxd.url);
    const store = new InfluxTelemetry({ url: proxy.url, bucket: opened.database, describeDevice: describeAnyDevice, write: FAST_RETRIES });
    try {
      const sample = (i: number) => ({ deviceId: 'live', ts: t0 + i * 1000, seq: i, metrics: { powerW: i } });
      // First sight of the device: one lookup (from its sample on, no end).
      expect(await store.writeTelemetry([sample(10)])).toEqual({ inserted: [true] });
      expect(proxy.queries()).toBe(1);
      for (let i = 11; i < 20; i++) expect(await store.writeTelemetry([sample(i)])).toEqual({ inserted: [true] });
      expect(proxy.queries()).toBe(1);
      // A redelivery and a late sample are not later than what was written: looked up.
      expect(await store.writeTelemetry([sample(20), sample(15), sample(5)])).toEqual({ inserted: [true, false, true] });
      expect(proxy.queries()).toBe(2);
    } finally {
      await store.close();
    }
  });

  it('finds what an earlier process wrote when a new one is redelivered it', async () => {
    opened = await openStore();
    const batch = Array.from({ length: 20 }, (_, i) => ({ deviceId: `restart-${i % 4}`, ts: t0 + i * 500, seq: i, metrics: { powerW: i } }));
    expect((await opened.store.writeTelemetry(batch)).inserted.every(Boolean)).toBe(true);
    const restarted = new InfluxTelemetry({ url: influxd.url, bucket: opened.database, describeDevice: describeAnyDevice, write: FAST_RETRIES });
    try {
      const next = { deviceId: 'restart-0', ts: t0 + 20 * 500, seq: 20, metrics: { powerW: 20 } };
      expect(await restarted.writeTelemetry([...batch.slice(10), next])).toEqual({ inserted: [...batch.slice(10).map(() => false), true] });
    } finally {
      await restarted.close();
    }
  });

  it('finds stored duplicates of a batch that mixes live samples of many devices with one device flushing an hour of buffered ones', async () => {
    opened = await openStore();
    const { store } = opened;
    const live = Array.from({ length: 300 }, (_, i) => ({ deviceId: `live-${i}`, ts: t0 + HOUR_MS + (i % 50), seq: 1, metrics: { powerW: i } }));
    const buffered = Array.from({ length: 360 }, (_, i) => ({ deviceId: 'flusher', ts: t0 + i * 10_000, seq: i, metrics: { powerW: i } }));
    const first = await store.writeTelemetry([...live.slice(0, 150), ...buffered.slice(0, 180)]);
    expect(first.inserted.every(Boolean)).toBe(true);
    const again = await store.writeTelemetry([...buffered, ...live]);
    expect(again.inserted).toEqual([...buffered.map((_, i) => i >= 180), ...live.map((_, i) => i >= 150)]);
    const read = await store.queryTelemetry({ deviceId: 'flusher', fromMs: t0, toMs: t0 + HOUR_MS, limit: 1_000 });
    expect(read.map((p) => p.seq)).toEqual(buffered.map((p) => p.seq));
  });

  it('writes to a database/retention-policy bucket, reads from that policy, and refuses a sample older than it', async () => {
    opened = await openStore();
    await influxd.command(`CREATE RETENTION POLICY "week" ON "${opened.database}" DURATION 7d REPLICATION 1`);
    const store = new InfluxTelemetry({ url: influxd.url, bucket: `${opened.database}/week`, describeDevice: describeAnyDevice, write: FAST_RETRIES });
    try {
      const point = { deviceId: 'rp-1', ts: Date.now() - 1_000, seq: 1, metrics: { powerW: 1 } };
      await store.writeTelemetry([point]);
      expect(await store.queryTelemetry({ deviceId: 'rp-1', fromMs: point.ts, toMs: point.ts + 1, limit: 1 })).toEqual([point]);
      // The default policy (autogen) holds nothing.
      expect(await opened.store.queryTelemetry({ deviceId: 'rp-1', fromMs: point.ts, toMs: point.ts + 1, limit: 1 })).toEqual([]);
      await store.checkHealth();

      // A sample older than the policy: a 400 "partial write" that stored the rest. Ingest isolates the
      // messages: the old one is refused again, the other is written again and reported new.
      const old = { deviceId: 'rp-2', ts: Date.now() - 30 * 86_400_000, seq: 1, metrics: { powerW: 1 } };
      const fresh = { deviceId: 'rp-3', ts: Date.now() - 1_000, seq: 1, metrics: { powerW: 2 } };
      const error = await store.writeTelemetry([old, fresh]).catch((e: unknown) => e);
      expect((error as StoreError).code).toBe('invalid');
      expect((error as StoreError).message).toMatch(/beyond retention policy/);
      expect(await codeOf(store.writeTelemetry([old]))).toBe('invalid');
      expect(await store.writeTelemetry([fresh])).toEqual({ inserted: [true] });
      expect(await store.queryTelemetry({ deviceId: 'rp-3', fromMs: 0, toMs: Date.now() + 1, limit: 5 })).toEqual([fresh]);
    } finally {
      await store.close();
    }
  });
});
