import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  describeDeadLetterStoreContract,
  describeRegistryContract,
  describeRollupTiersContract,
  describeTelemetryStoreContract,
  describeTwinStoreContract,
} from './contract/index.ts';
import {
  DEFAULT_BUSY_TIMEOUT_MS,
  DEFAULT_DEAD_LETTER_LIMITS,
  MIGRATIONS,
  SCHEMA_VERSION,
  StoreError,
  migrateSchema,
  type DeviceState,
} from './index.ts';
import { openTempStore, useStoreFiles } from './test-store-files.ts';

/** The folder holding the project's node_modules, where a child process finds the driver. */
const PROJECT_ROOT = path.resolve(import.meta.dirname, '..');

/**
 * Has another process take the write lock of `file` (BEGIN IMMEDIATE) and
 * hold it for `holdMs`. Resolves once the lock is held; `released` resolves
 * when that process has let go of it and exited.
 */
async function holdWriteLockInAnotherProcess(file: string, holdMs: number): Promise<{ released: Promise<void> }> {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, Number(process.argv[2]));
  `;
  const child = spawn(process.execPath, ['-e', script, file, String(holdMs)], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const released = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`lock holder exited with ${code}`))));
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    released.catch(reject);
  });
  return { released };
}

function sha256Hex(payload: Buffer): string {
  return createHash('sha256').update(payload).digest('hex');
}

function stateOf(deviceId: string, values: Partial<DeviceState> = {}): DeviceState {
  return { deviceId, lastTs: null, lastSeenMs: null, lastSeq: null, metrics: {}, presence: 'offline', presenceSinceMs: null, status: null, ...values };
}

describeTelemetryStoreContract('SqliteStore', () => openTempStore('vpp-store-'));
// Same contract with every write compacted at once, so reads, redeliveries
// and limits are checked against compacted samples as well as staged ones.
describeTelemetryStoreContract('SqliteStore compacting after every write', () => openTempStore('vpp-store-', { compactTelemetryAfterPoints: 1 }));
describeRollupTiersContract(
  'SqliteStore',
  () => openTempStore('vpp-store-', { retention: { telemetryMs: 24 * 3_600_000, rollups1mMs: 6 * 3_600_000, rollups15mMs: 24 * 3_600_000, rollups1hMs: 24 * 3_600_000 } }),
  { telemetryMs: 24 * 3_600_000, rollups1mMs: 6 * 3_600_000, coarseMs: 24 * 3_600_000 },
);
describeRegistryContract('SqliteStore', () => openTempStore('vpp-store-'));
describeTwinStoreContract('SqliteStore', () => openTempStore('vpp-store-'));
describeDeadLetterStoreContract('SqliteStore', (deadLetters) => openTempStore('vpp-store-', { deadLetters }));
// The same suites through the port objects the store exposes.
describeRegistryContract('SqliteStore.registry', async () => {
  const { store, close } = await openTempStore('vpp-store-');
  return { store: store.registry, close };
});
describeTwinStoreContract('SqliteStore.twins', async () => {
  const { store, close } = await openTempStore('vpp-store-');
  return { store: store.twins, close };
});
describeDeadLetterStoreContract('SqliteStore.deadLetters', async (deadLetters) => {
  const { store, close } = await openTempStore('vpp-store-', { deadLetters });
  return { store: store.deadLetters, close };
});

describe('SqliteStore on a file', () => {
  const { file, open, countRows } = useStoreFiles<'telemetry' | 'telemetry_recent'>('vpp-store-', path.join('nested', 'data', 'vpp.db'));

  it('creates the parent folder, and sets WAL, synchronous NORMAL, foreign keys, busy timeout and the schema version', () => {
    const opened = open({ busyTimeoutMs: 1234 });
    expect(fs.existsSync(file())).toBe(true);
    const raw = new Database(file(), { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      raw.close();
    }
    // Per-connection settings, read through the store's own connection.
    const store = opened as unknown as { db: Database.Database };
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
    first.saveDeviceStates([
      { deviceId: 'dev-1', lastTs: 5_000, lastSeenMs: 5_001, lastSeq: 1, metrics: { powerW: 10 }, presence: 'stale', presenceSinceMs: 4_000, status: null },
    ]);
    first.addDeadLetters([{ receivedAtMs: 1, topic: 't', clientId: null, reason: 'schema', detail: 'd', payload: Buffer.from('x') }]);
    await first.close();

    const second = open();
    expect(second.getAcceptedSecretHashes('dev-1', 6_000)).toEqual(['h']);
    expect(await second.queryTelemetry({ deviceId: 'dev-1', fromMs: 0, toMs: 10_000, limit: 10 })).toEqual([
      { deviceId: 'dev-1', ts: 5_000, seq: 1, metrics: { powerW: 10 } },
    ]);
    expect(await second.queryRollups({ kind: 'device', entityId: 'dev-1', fromMs: 0, toMs: 60_000, bucketMs: 60_000 })).toHaveLength(1);
    expect(second.getDeviceState('dev-1')).toMatchObject({ presence: 'stale', presenceSinceMs: 4_000 });
    expect(second.countDeadLettersByReason()).toEqual({ schema: 1 });
    expect((await second.writeTelemetry([{ deviceId: 'dev-1', ts: 5_000, seq: 1, metrics: { powerW: 99 } }])).inserted).toEqual([false]);
  });

  it('lets two stores on the same file (like two processes) see each other’s committed writes', async () => {
    const ingest = open();
    const control = open();
    control.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
    control.createDevice({ id: 'dev-1', type: 'solar', siteId: 'site-1', secretHash: 'h1' }, 1_000);
    expect(ingest.getAcceptedSecretHashes('dev-1', 1_000)).toEqual(['h1']);

    await ingest.writeTelemetry([{ deviceId: 'dev-1', ts: 1_000, seq: 0, metrics: { powerW: 5 } }]);
    expect(await control.queryTelemetry({ deviceId: 'dev-1', fromMs: 0, toMs: 2_000, limit: 10 })).toHaveLength(1);
    // Idempotency holds across connections too.
    expect((await control.writeTelemetry([{ deviceId: 'dev-1', ts: 1_000, seq: 0, metrics: { powerW: 6 } }])).inserted).toEqual([false]);

    control.rotateDeviceSecret('dev-1', 'h2', 3_000);
    expect(ingest.getAcceptedSecretHashes('dev-1', 2_000)).toEqual(['h2', 'h1']);
    control.revokeDevice('dev-1', 2_000);
    expect(ingest.getAcceptedSecretHashes('dev-1', 2_000)).toEqual([]);
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
    const other = new Database(file());
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

  it('fails every port’s write fast with unavailable by default while another connection holds the write lock, and writes once it is released', async () => {
    const store = open();
    expect((store as unknown as { db: Database.Database }).db.pragma('busy_timeout', { simple: true })).toBe(DEFAULT_BUSY_TIMEOUT_MS);
    const writes: Record<string, () => unknown> = {
      telemetry: () => store.writeTelemetry([{ deviceId: 'dev-1', ts: 1, seq: 0, metrics: { powerW: 1 } }]),
      registry: () => store.upsertSite({ id: 'site-1', region: 'north', name: 'One' }),
      twins: () => store.saveDeviceStates([stateOf('dev-1')]),
      deadLetters: () => store.addDeadLetters([{ receivedAtMs: 1, topic: 't', clientId: null, reason: 'schema', detail: '', payload: Buffer.from('x') }]),
    };
    const other = new Database(file());
    try {
      other.exec('BEGIN IMMEDIATE');
      for (const [port, write] of Object.entries(writes)) {
        const startedMs = performance.now();
        const error = await Promise.resolve()
          .then(write)
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        const elapsedMs = performance.now() - startedMs;
        expect(error, port).toBeInstanceOf(StoreError);
        expect((error as StoreError).code, port).toBe('unavailable');
        // It did wait for the lock (a transient lock passes), but not for long.
        expect(elapsedMs, port).toBeGreaterThanOrEqual(DEFAULT_BUSY_TIMEOUT_MS * 0.8);
        expect(elapsedMs, port).toBeLessThan(1_000);
      }
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    for (const write of Object.values(writes)) await write();
    expect(store.listSites()).toHaveLength(1);
    expect(store.listDeviceStates()).toHaveLength(1);
    expect(store.countDeadLettersByReason()).toEqual({ schema: 1 });
    expect(await store.queryTelemetry({ deviceId: 'dev-1', fromMs: 0, toMs: 10, limit: 10 })).toHaveLength(1);
  });

  it('waits longer than the busy timeout when opening, while another process migrates or writes', async () => {
    fs.mkdirSync(path.dirname(file()), { recursive: true });
    const raw = new Database(file());
    raw.pragma('journal_mode = WAL');
    migrateSchema(raw, MIGRATIONS.slice(0, 2));
    raw.close();
    const { released } = await holdWriteLockInAnotherProcess(file(), 600);
    const startedMs = performance.now();
    // The migration to the current version needs the write lock the other process holds.
    const store = open({ busyTimeoutMs: 50 });
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(400);
    await released;
    expect((store as unknown as { db: Database.Database }).db.pragma('busy_timeout', { simple: true })).toBe(50);
    store.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
    expect(store.listSites()).toHaveLength(1);
  });

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

  it('refuses with invalid, before writing any of the batch, a ts or seq that is not a safe integer, and metrics that cannot be serialised', async () => {
    const store = open();
    const good = { deviceId: 'dev-1', ts: 1, seq: 0, metrics: { powerW: 1 } };
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad = [
      { ...good, ts: 1.5 },
      { ...good, ts: 2, seq: 1e20 },
      { ...good, ts: 3, seq: -1e20 },
      { ...good, ts: 1e20 },
      { ...good, ts: 4, seq: Number.NaN },
      { ...good, ts: 5, metrics: cyclic as Record<string, number> },
      { ...good, ts: 6, metrics: { powerW: 1n } as unknown as Record<string, number> },
    ];
    for (const point of bad) {
      const error = await store.writeTelemetry([good, point]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe('invalid');
    }
    expect(countRows('telemetry_recent') + countRows('telemetry')).toBe(0);
    expect((await store.writeTelemetry([{ ...good, seq: Number.MAX_SAFE_INTEGER }])).inserted).toEqual([true]);
    expect((await store.queryTelemetry({ deviceId: 'dev-1', fromMs: 0, toMs: 10, limit: 10 })).map((p) => p.seq)).toEqual([Number.MAX_SAFE_INTEGER]);
  });

  it('refuses a twin state with a time or seq that is not a safe integer, or an unknown presence, with invalid', () => {
    const store = open();
    for (const values of [{ lastSeq: 1e20 }, { lastTs: 0.5 }, { lastSeenMs: Number.POSITIVE_INFINITY }, { presenceSinceMs: 1.5 }, { presence: 'gone' as DeviceState['presence'] }]) {
      expect(() => store.saveDeviceStates([stateOf('dev-1', values)])).toThrow(expect.objectContaining({ code: 'invalid' }));
    }
    expect(store.listDeviceStates()).toEqual([]);
  });

  it('reports unavailable after close', async () => {
    const store = open();
    await store.close();
    await expect(store.checkHealth()).rejects.toMatchObject({ code: 'unavailable' });
    expect(() => store.listSites()).toThrow(StoreError);
  });

  it('refuses a file written by a newer schema version without touching it', () => {
    fs.mkdirSync(path.dirname(file()), { recursive: true });
    const raw = new Database(file());
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => open()).toThrow(expect.objectContaining({ code: 'invalid' }));
  });

  it('migrates a version 1 file by merging its 1-minute rollups into the coarse tiers', async () => {
    fs.mkdirSync(path.dirname(file()), { recursive: true });
    const raw = new Database(file());
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
    const store = open();
    // The statement the registry runs on every CONNECT, as it wrote it.
    const secretSql = (store.registry as unknown as { stmt: { acceptedSecrets: Database.Statement } }).stmt.acceptedSecrets.source;
    const raw = new Database(file(), { readonly: true });
    try {
      const secretPlan = raw.prepare(`EXPLAIN QUERY PLAN ${secretSql}`).all('x') as Array<{ detail: string }>;
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

describe('SqliteStore, its ports, migrations and dead-letter bounds', () => {
  const { file, open } = useStoreFiles('vpp-store-');

  it('serves its four port objects over one connection: what one writes, the façade and the others read', async () => {
    const store = open();
    store.registry.upsertSite({ id: 'site-1', region: 'north', name: 'One' });
    store.createDevice({ id: 'dev-1', type: 'battery', siteId: 'site-1', secretHash: 'h1' }, 1_000);
    expect(store.registry.getAcceptedSecretHashes('dev-1', 1_000)).toEqual(['h1']);
    expect(store.getSite('site-1')?.name).toBe('One');

    await store.telemetry.writeTelemetry([{ deviceId: 'dev-1', ts: 5, seq: 1, metrics: { powerW: 2 } }]);
    expect(await store.queryTelemetry({ deviceId: 'dev-1', fromMs: 0, toMs: 10, limit: 10 })).toHaveLength(1);
    expect(store.compactTelemetry()).toBe(1);

    store.saveDeviceStates([stateOf('dev-1', { presence: 'online', presenceSinceMs: 7 })]);
    expect(store.twins.getDeviceState('dev-1')?.presence).toBe('online');

    store.deadLetters.addDeadLetters([{ receivedAtMs: 1, topic: 't', clientId: null, reason: 'schema', detail: '', payload: Buffer.from('x') }]);
    expect(store.countDeadLettersByReason()).toEqual({ schema: 1 });
    expect(store.pruneDeadLetters(1 + DEFAULT_DEAD_LETTER_LIMITS.retentionMs + 1)).toBe(1);

    // Closing through one port closes the connection all of them share.
    await store.telemetry.close();
    expect(() => store.registry.listSites()).toThrow(expect.objectContaining({ code: 'unavailable' }));
    expect(() => store.twins.listDeviceStates()).toThrow(expect.objectContaining({ code: 'unavailable' }));
    expect(() => store.countDeadLettersByReason()).toThrow(expect.objectContaining({ code: 'unavailable' }));
    await store.close();
  });

  it('cuts payloads to 4 KiB by default', () => {
    const store = open();
    const payload = Buffer.alloc(10_000, 7);
    store.addDeadLetters([{ receivedAtMs: 1, topic: 't', clientId: null, reason: 'schema', detail: '', payload }]);
    const [stored] = store.listDeadLetters({ limit: 1 });
    expect(stored?.payload.length).toBe(DEFAULT_DEAD_LETTER_LIMITS.maxPayloadBytes);
    expect(DEFAULT_DEAD_LETTER_LIMITS).toEqual({ maxPayloadBytes: 4_096, maxTotalBytes: 64 * 1024 * 1024, retentionMs: 7 * 86_400_000 });
    expect(stored).toMatchObject({ payloadBytes: 10_000, truncated: true });
  });

  it('refuses dead-letter limits that cannot hold the newest letter, and a fractional busy timeout, before creating any file', () => {
    for (const deadLetters of [{ maxPayloadBytes: 100, maxTotalBytes: 10 }, { maxPayloadBytes: -1 }, { retentionMs: 0 }, { maxTotalBytes: Number.POSITIVE_INFINITY }]) {
      expect(() => open({ deadLetters })).toThrow(expect.objectContaining({ code: 'invalid' }));
    }
    expect(() => open({ busyTimeoutMs: 2.5 })).toThrow(expect.objectContaining({ code: 'invalid' }));
    expect(fs.existsSync(file())).toBe(false);
  });

  it('holds the dead-letter size cap whichever process adds the letters', () => {
    // Each letter counts 18 bytes: 10 of payload, 't', 'schema' and a one-character detail.
    const limits = { maxPayloadBytes: 10, maxTotalBytes: 54 };
    const ingest = open({ deadLetters: limits });
    const other = open({ deadLetters: limits });
    const letter = (n: number) => ({ receivedAtMs: n, topic: 't', clientId: null, reason: 'schema', detail: `${n}`, payload: Buffer.alloc(10, n) });
    ingest.addDeadLetters([letter(1), letter(2)]);
    other.addDeadLetters([letter(3), letter(4)]);
    ingest.addDeadLetters([letter(5)]);
    expect(ingest.listDeadLetters({ limit: 10 }).map((l) => l.detail)).toEqual(['5', '4', '3']);
  });

  it('migrates a version 2 file: secrets kept without grace, states offline, dead letters sized, hashed and counted towards the cap', () => {
    const raw = new Database(file());
    migrateSchema(raw, MIGRATIONS.slice(0, 2));
    raw.prepare("INSERT INTO sites VALUES ('site-1', 'north', 'One')").run();
    raw.prepare("INSERT INTO devices VALUES ('dev-1', 'battery', 'site-1', 'h1', 1000, NULL)").run();
    raw.prepare("INSERT INTO device_state VALUES ('dev-1', 5, 6, 7, '{\"powerW\":1}', 1, NULL)").run();
    const small = Buffer.from('{"bad json');
    const large = Buffer.alloc(5_000, 1);
    const insertLetter = raw.prepare('INSERT INTO dead_letters (received_at_ms, topic, client_id, reason, detail, payload) VALUES (?, ?, NULL, ?, ?, ?)');
    insertLetter.run(1, 't', 'not-json', 'a', small);
    insertLetter.run(2, 't', 'schema', 'b', large);
    raw.close();

    const store = open({ deadLetters: { maxPayloadBytes: 1_000, maxTotalBytes: 6_020 } });
    expect(store.getAcceptedSecretHashes('dev-1', 2_000)).toEqual(['h1']);
    expect(store.getDeviceState('dev-1')).toEqual(stateOf('dev-1', { lastTs: 5, lastSeenMs: 6, lastSeq: 7, metrics: { powerW: 1 } }));
    const [second, first] = store.listDeadLetters({ limit: 10 });
    expect(first).toMatchObject({ reason: 'not-json', payloadBytes: small.length, payloadSha256: sha256Hex(small), truncated: false });
    expect(second).toMatchObject({ reason: 'schema', payloadBytes: 5_000, payloadSha256: sha256Hex(large), truncated: false });

    // 5 028 stored bytes came with the file (payloads, topics, reasons, details); 1 008 more pass the cap, and the oldest goes.
    store.addDeadLetters([{ receivedAtMs: 3, topic: 't', clientId: null, reason: 'schema', detail: 'c', payload: Buffer.alloc(1_000, 2) }]);
    expect(store.listDeadLetters({ limit: 10 }).map((l) => l.detail)).toEqual(['c', 'b']);
  });
});
