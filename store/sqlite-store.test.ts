import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  describeDeadLetterStoreContract,
  describeRegistryContract,
  describeRollupTiersContract,
  describeTelemetryStoreContract,
  describeTwinStoreContract,
} from './contract/index.ts';
import { MIGRATIONS, SCHEMA_VERSION, StoreError, migrateSchema, openSqliteStore, type SqliteStore, type SqliteStoreOptions } from './index.ts';

/** A fresh store on a real file in its own temp folder; close removes the folder. */
async function openTempStore(options: Omit<SqliteStoreOptions, 'file'> = {}): Promise<{ store: SqliteStore; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-store-'));
  const store = openSqliteStore({ file: path.join(dir, 'vpp.db'), ...options });
  return {
    store,
    async close() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describeTelemetryStoreContract('SqliteStore', () => openTempStore());
// Same contract with every write compacted at once, so reads, redeliveries
// and limits are checked against compacted samples as well as staged ones.
describeTelemetryStoreContract('SqliteStore compacting after every write', () => openTempStore({ compactTelemetryAfterPoints: 1 }));
describeRollupTiersContract(
  'SqliteStore',
  () => openTempStore({ retention: { telemetryMs: 24 * 3_600_000, rollups1mMs: 6 * 3_600_000, rollups15mMs: 24 * 3_600_000, rollups1hMs: 24 * 3_600_000 } }),
  { telemetryMs: 24 * 3_600_000, rollups1mMs: 6 * 3_600_000, coarseMs: 24 * 3_600_000 },
);
describeRegistryContract('SqliteStore', () => openTempStore());
describeTwinStoreContract('SqliteStore', () => openTempStore());
describeDeadLetterStoreContract('SqliteStore', () => openTempStore());

describe('SqliteStore on a file', () => {
  let dir: string;
  let file: string;
  const opened: SqliteStore[] = [];

  function open(options: Omit<SqliteStoreOptions, 'file'> = {}): SqliteStore {
    const store = openSqliteStore({ file, ...options });
    opened.push(store);
    return store;
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpp-store-'));
    file = path.join(dir, 'nested', 'data', 'vpp.db');
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates the parent folder, and sets WAL, synchronous NORMAL, foreign keys, busy timeout and the schema version', () => {
    open({ busyTimeoutMs: 1234 });
    expect(fs.existsSync(file)).toBe(true);
    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      raw.close();
    }
    // Per-connection settings, read through the store's own connection.
    const store = opened[0]! as unknown as { db: Database.Database };
    expect(store.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(store.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(store.db.pragma('busy_timeout', { simple: true })).toBe(1234);
  });

  it('keeps data after close and reopen', async () => {
    const first = open();
    first.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
    first.createDevice({ id: 'dev-1', type: 'battery', siteId: 'site-1', secretHash: 'h' }, 1_000);
    await first.writeTelemetry([{ deviceId: 'dev-1', ts: 5_000, seq: 1, metrics: { powerW: 10 } }]);
    await first.writeRollups([
      { kind: 'device', entityId: 'dev-1', metric: 'powerW', bucketStartMs: 0, min: 1, max: 2, mean: 1.5, last: 2, count: 2, devicesReporting: 1, devicesTotal: 1 },
    ]);
    first.saveDeviceStates([{ deviceId: 'dev-1', lastTs: 5_000, lastSeenMs: 5_001, lastSeq: 1, metrics: { powerW: 10 }, online: true, status: null }]);
    first.addDeadLetters([{ receivedAtMs: 1, topic: 't', clientId: null, reason: 'schema', detail: 'd', payload: Buffer.from('x') }]);
    await first.close();

    const second = open();
    expect(second.getActiveSecretHash('dev-1')).toBe('h');
    expect(await second.queryTelemetry({ deviceId: 'dev-1', fromMs: 0, toMs: 10_000, limit: 10 })).toEqual([
      { deviceId: 'dev-1', ts: 5_000, seq: 1, metrics: { powerW: 10 } },
    ]);
    expect(await second.queryRollups({ kind: 'device', entityId: 'dev-1', fromMs: 0, toMs: 60_000, bucketMs: 60_000 })).toHaveLength(1);
    expect(second.getDeviceState('dev-1')?.online).toBe(true);
    expect(second.countDeadLettersByReason()).toEqual({ schema: 1 });
    expect((await second.writeTelemetry([{ deviceId: 'dev-1', ts: 5_000, seq: 1, metrics: { powerW: 99 } }])).inserted).toEqual([false]);
  });

  it('lets two stores on the same file (like two processes) see each other’s committed writes', async () => {
    const ingest = open();
    const control = open();
    control.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
    control.createDevice({ id: 'dev-1', type: 'solar', siteId: 'site-1', secretHash: 'h1' }, 1_000);
    expect(ingest.getActiveSecretHash('dev-1')).toBe('h1');

    await ingest.writeTelemetry([{ deviceId: 'dev-1', ts: 1_000, seq: 0, metrics: { powerW: 5 } }]);
    expect(await control.queryTelemetry({ deviceId: 'dev-1', fromMs: 0, toMs: 2_000, limit: 10 })).toHaveLength(1);
    // Idempotency holds across connections too.
    expect((await control.writeTelemetry([{ deviceId: 'dev-1', ts: 1_000, seq: 0, metrics: { powerW: 6 } }])).inserted).toEqual([false]);

    control.revokeDevice('dev-1', 2_000);
    expect(ingest.getActiveSecretHash('dev-1')).toBeUndefined();
  });

  it('changes the registry change token on registry writes, its own and another process’s', () => {
    const ingest = open();
    const control = open();
    const first = ingest.changeToken();
    expect(ingest.changeToken()).toBe(first);
    control.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
    const second = ingest.changeToken();
    expect(second).not.toBe(first);
    ingest.createDevice({ id: 'dev-1', type: 'solar', siteId: 'site-1', secretHash: 'h1' }, 1_000);
    expect(ingest.changeToken()).not.toBe(second);
  });

  it('fails a write with unavailable when another process holds the write lock past the busy timeout, and leaves nothing behind', async () => {
    const store = open({ busyTimeoutMs: 50 });
    const other = new Database(file);
    try {
      other.exec('BEGIN IMMEDIATE');
      const error = await store.writeTelemetry([{ deviceId: 'dev-1', ts: 1, seq: 0, metrics: { powerW: 1 } }]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe('unavailable');
      expect((error as StoreError).cause).toBeInstanceOf(Database.SqliteError);
      // Readers are not blocked by a writer in WAL mode.
      expect(store.listSites()).toEqual([]);
      other.exec('ROLLBACK');
    } finally {
      other.close();
    }
    expect((await store.writeTelemetry([{ deviceId: 'dev-1', ts: 1, seq: 0, metrics: { powerW: 1 } }])).inserted).toEqual([true]);
  });

  function countRows(table: 'telemetry' | 'telemetry_recent'): number {
    const raw = new Database(file, { readonly: true });
    try {
      return raw.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number;
    } finally {
      raw.close();
    }
  }

  it('answers the same before and after compaction, with samples split over staged and compacted ones', async () => {
    const store = open();
    const sample = (ts: number, powerW: number) => ({ deviceId: 'dev-1', ts, seq: ts, metrics: { powerW } });
    await store.writeTelemetry([sample(10, 1), sample(30, 3), { ...sample(20, 2), deviceId: 'dev-2' }]);
    expect(store.compactTelemetry()).toBe(3);
    await store.writeTelemetry([sample(20, 2), sample(40, 4)]);
    expect([countRows('telemetry'), countRows('telemetry_recent')]).toEqual([3, 2]);

    const query = { deviceId: 'dev-1', fromMs: 0, toMs: 100, limit: 3 };
    const before = await store.queryTelemetry(query);
    expect(before.map((p) => p.metrics.powerW)).toEqual([1, 2, 3]);
    // Redeliveries are recognised in both tables.
    expect((await store.writeTelemetry([sample(10, -1), sample(40, -4), sample(50, 5)])).inserted).toEqual([false, false, true]);

    expect(store.compactTelemetry()).toBe(3);
    expect(countRows('telemetry_recent')).toBe(0);
    expect(await store.queryTelemetry(query)).toEqual(before);
    expect((await store.queryTelemetry({ ...query, limit: 10 })).map((p) => p.metrics.powerW)).toEqual([1, 2, 3, 4, 5]);
    expect(store.compactTelemetry()).toBe(0);
  });

  it('compacts by itself once enough points were staged, counting what an earlier run left staged', async () => {
    const points = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ deviceId: 'dev-1', ts: from + i, seq: from + i, metrics: { powerW: i } }));
    const first = open({ compactTelemetryAfterPoints: 10 });
    await first.writeTelemetry(points(0, 6));
    expect(countRows('telemetry_recent')).toBe(6);
    await first.close();

    const second = open({ compactTelemetryAfterPoints: 10 });
    await second.writeTelemetry(points(6, 3));
    expect(countRows('telemetry_recent')).toBe(9);
    await second.writeTelemetry(points(9, 1));
    expect([countRows('telemetry'), countRows('telemetry_recent')]).toEqual([10, 0]);
    expect(await second.queryTelemetry({ deviceId: 'dev-1', fromMs: 0, toMs: 100, limit: 100 })).toHaveLength(10);
  });

  it('rejects a whole batch with a non-integer timestamp before writing any of it', async () => {
    const store = open();
    const error = await store
      .writeTelemetry([
        { deviceId: 'dev-1', ts: 1, seq: 0, metrics: { powerW: 1 } },
        { deviceId: 'dev-1', ts: 1.5, seq: 1, metrics: { powerW: 1 } },
      ])
      .catch((e: unknown) => e);
    expect((error as StoreError).code).toBe('invalid');
    expect(await store.queryTelemetry({ deviceId: 'dev-1', fromMs: 0, toMs: 10, limit: 10 })).toEqual([]);
  });

  it('reports unavailable after close', async () => {
    const store = open();
    await store.close();
    await expect(store.checkHealth()).rejects.toMatchObject({ code: 'unavailable' });
    expect(() => store.listSites()).toThrow(StoreError);
  });

  it('refuses a file written by a newer schema version without touching it', () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const raw = new Database(file);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => open()).toThrow(expect.objectContaining({ code: 'invalid' }));
  });

  it('migrates a version 1 file by merging its 1-minute rollups into the coarse tiers', async () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const raw = new Database(file);
    migrateSchema(raw, MIGRATIONS.slice(0, 1));
    const insert = raw.prepare('INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (let minute = 0; minute < 20; minute++) insert.run('site', 's1', 'powerW', minute * 60_000, minute, minute + 1, minute + 0.5, minute * 2, 2, 1, 3);
    raw.close();
    const store = open();
    const quarters = await store.queryRollups({ kind: 'site', entityId: 's1', fromMs: 0, toMs: 3_600_000, bucketMs: 900_000 });
    expect(quarters.map((r) => [r.bucketStartMs, r.min, r.max, r.mean, r.last, r.count])).toEqual([
      [0, 0, 15, 7.5, 28, 30],
      [900_000, 15, 20, 17.5, 38, 10],
    ]);
    const [hour] = await store.queryRollups({ kind: 'site', entityId: 's1', fromMs: 0, toMs: 3_600_000, bucketMs: 3_600_000 });
    expect([hour?.min, hour?.max, hour?.mean, hour?.last, hour?.count, hour?.devicesTotal]).toEqual([0, 20, 10, 38, 40, 3]);
  });

  it('rejects a retention where a coarser tier is kept shorter than a finer one', () => {
    expect(() => open({ retention: { rollups1mMs: 7 * 86_400_000, rollups15mMs: 86_400_000 } })).toThrow(expect.objectContaining({ code: 'invalid' }));
  });

  it('uses the primary key for the broker’s secret lookup and for rollup queries', () => {
    open();
    const raw = new Database(file, { readonly: true });
    try {
      const secretPlan = raw
        .prepare('EXPLAIN QUERY PLAN SELECT secret_hash FROM devices WHERE id = ? AND revoked_at_ms IS NULL')
        .all('x') as Array<{ detail: string }>;
      expect(secretPlan.map((r) => r.detail).join(' ')).toMatch(/SEARCH devices USING PRIMARY KEY \(id=\?\)/);
      const rollupPlan = raw
        .prepare(
          'EXPLAIN QUERY PLAN SELECT * FROM rollups WHERE kind = ? AND entity_id = ? AND metric IN (SELECT value FROM json_each(?)) AND bucket_start_ms >= ? AND bucket_start_ms < ?',
        )
        .all('site', 's', '["powerW"]', 0, 1) as Array<{ detail: string }>;
      expect(rollupPlan.map((r) => r.detail).join(' ')).toMatch(/SEARCH rollups USING PRIMARY KEY \(kind=\? AND entity_id=\? AND metric=\? AND bucket_start_ms>\? AND bucket_start_ms<\?\)/);
    } finally {
      raw.close();
    }
  });
});
