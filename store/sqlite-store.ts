/**
 * Embedded store: the storage ports over one SQLite file (better-sqlite3).
 *
 * SqliteStore opens the file, configures the connection, migrates the
 * schema and builds one object per port on that connection: `registry`
 * (sqlite-registry.ts), `telemetry` (sqlite-telemetry.ts, with rollups in
 * sqlite-rollups.ts), `twins` (sqlite-twins.ts), `deadLetters`
 * (sqlite-dead-letters.ts), `alerts` (sqlite-alerts.ts: AlertStore and
 * AlertOutbox), `commands` (sqlite-commands.ts: CommandStore),
 * `dispatches` (sqlite-dispatches.ts: DispatchStore), `tokens`
 * (sqlite-tokens.ts: TokenStore) and `audit` (sqlite-audit.ts: AuditStore).
 * It also implements the first four ports itself by delegating to them, so
 * one store can be handed to whatever needs any of them; the others are
 * used through `store.alerts`, `store.commands`, `store.dispatches`,
 * `store.tokens` and `store.audit` only.
 *
 * Several processes may open the same file: ingest writes telemetry while
 * control and the broker read the registry. WAL mode lets readers run beside
 * the one writer; every write transaction is IMMEDIATE, so it takes the
 * write lock up front and cannot deadlock upgrading a read lock.
 *
 * better-sqlite3 is synchronous: a connection waiting for another process's
 * write lock blocks the whole event loop. So `busy_timeout` is short (250 ms
 * by default): past it the call fails with StoreError 'unavailable', and the
 * writer retries with backoff while the process goes on serving.
 *
 * Durability: `synchronous = NORMAL` in WAL mode means a committed
 * transaction survives a crash of the process (the WAL is in the OS's hands
 * at commit), and the last transactions before a power loss may roll back.
 * That is the guarantee the platform gives.
 *
 * Files: a folder the store creates is 0700; the database file is created
 * 0600, and SQLite gives its -wal and -shm files the database file's mode.
 * An existing database file (and -wal, -shm) that this process's user owns
 * is narrowed to 0600 at open.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import { SqliteAlerts } from './sqlite-alerts.ts';
import { SqliteAudit } from './sqlite-audit.ts';
import { SqliteCommands } from './sqlite-commands.ts';
import { SqliteDispatches, type SqliteDispatchesOptions } from './sqlite-dispatches.ts';
import { SqliteDeadLetters, checkDeadLetterLimits, DEFAULT_DEAD_LETTER_LIMITS } from './sqlite-dead-letters.ts';
import { SqliteRegistry } from './sqlite-registry.ts';
import { DEFAULT_RETENTION, checkRetention, type PruneCounts, type RetentionPolicy } from './sqlite-rollups.ts';
import { migrateSchema, SCHEMA_VERSION } from './sqlite-schema.ts';
import { toStoreError } from './sqlite-common.ts';
import { SqliteTelemetry } from './sqlite-telemetry.ts';
import { SqliteTokens } from './sqlite-tokens.ts';
import { SqliteTwins } from './sqlite-twins.ts';
import {
  StoreError,
  type DeadLetter,
  type DeadLetterLimits,
  type DeadLetterStore,
  type DeviceCounts,
  type DeviceRecord,
  type DeviceState,
  type NewDevice,
  type Registry,
  type Rollup,
  type RollupColumns,
  type RollupQuery,
  type Site,
  type StoredDeadLetter,
  type TelemetryPoint,
  type TelemetryQuery,
  type TelemetryStore,
  type TwinStore,
  type WriteResult,
} from './types.ts';

export interface SqliteStoreOptions {
  /** Path of the database file; its folder is created if missing. ':memory:' is for unit tests only. */
  file: string;
  logger?: Logger;
  /**
   * How long a call waits for another process's write lock before failing
   * with 'unavailable' (DEFAULT_BUSY_TIMEOUT_MS). The event loop is blocked
   * meanwhile, so keep it short. Opening the file waits at least
   * OPEN_BUSY_TIMEOUT_MS, since another process may be migrating it.
   */
  busyTimeoutMs?: number;
  /**
   * Compact recent telemetry once this process has staged this many points
   * since its last compaction (see compactTelemetry). Larger values write
   * less in total but pause longer when compacting and leave more recent
   * samples for queries to scan.
   */
  compactTelemetryAfterPoints?: number;
  /** How long raw samples and each rollup tier are kept by pruneTelemetry/pruneRollups; DEFAULT_RETENTION fills the gaps. */
  retention?: Partial<RetentionPolicy>;
  /** Bounds on stored dead letters; DEFAULT_DEAD_LETTER_LIMITS fills the gaps. */
  deadLetters?: Partial<DeadLetterLimits>;
  /** Bounds on dispatches: samples kept per dispatch (MAX_DISPATCH_SAMPLES by default). */
  dispatches?: SqliteDispatchesOptions;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 250;
/** Opening is not on a hot path, and a migration in another process may hold the lock for a while. */
export const OPEN_BUSY_TIMEOUT_MS = 5_000;
const DEFAULT_COMPACT_TELEMETRY_AFTER_POINTS = 200_000;

const PRIVATE_FILE_MODE = 0o600;
const PRIVATE_FOLDER_MODE = 0o700;

/** ':memory:' and '' (a private temporary database) have no file of their own. */
function isInMemory(file: string): boolean {
  return file === ':memory:' || file === '';
}

/** Creates the missing folders of `folder`, each 0700; folders that exist are left as they are. */
function createPrivateFolder(folder: string): void {
  const missing: string[] = [];
  for (let dir = folder; !fs.existsSync(dir); dir = path.dirname(dir)) {
    missing.unshift(dir);
    if (path.dirname(dir) === dir) break;
  }
  fs.mkdirSync(folder, { recursive: true, mode: PRIVATE_FOLDER_MODE });
  // mkdir's mode is filtered by the umask; set it exactly.
  for (const dir of missing) fs.chmodSync(dir, PRIVATE_FOLDER_MODE);
}

/** Creates an empty database file 0600 (an empty file is a valid empty database) unless it exists. */
function createPrivateFile(file: string): void {
  try {
    fs.closeSync(fs.openSync(file, 'wx', PRIVATE_FILE_MODE));
    fs.chmodSync(file, PRIVATE_FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/**
 * Narrows the database file and its -wal and -shm files to 0600 where this
 * process's user owns them and they are wider. A file owned by someone else
 * is left alone; a failure is logged, not fatal.
 */
function restrictFileModes(file: string, log: Logger): void {
  const uid = process.getuid?.();
  for (const name of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      const stat = fs.statSync(name, { throwIfNoEntry: false });
      if (stat === undefined || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o777) === PRIVATE_FILE_MODE) continue;
      fs.chmodSync(name, PRIVATE_FILE_MODE);
    } catch (error) {
      log.warn({ err: error, file: name }, 'cannot restrict file mode to 0600');
    }
  }
}

export class SqliteStore implements Registry, TelemetryStore, TwinStore, DeadLetterStore {
  readonly file: string;
  readonly registry: SqliteRegistry;
  readonly telemetry: SqliteTelemetry;
  readonly twins: SqliteTwins;
  readonly deadLetters: SqliteDeadLetters;
  /** AlertStore and AlertOutbox on the same connection; not delegated by the façade, use it directly. */
  readonly alerts: SqliteAlerts;
  /** CommandStore on the same connection; not delegated by the façade, use it directly. */
  readonly commands: SqliteCommands;
  /** DispatchStore on the same connection; not delegated by the façade, use it directly. */
  readonly dispatches: SqliteDispatches;
  /** TokenStore on the same connection; not delegated by the façade, use it directly. */
  readonly tokens: SqliteTokens;
  /** AuditStore on the same connection; not delegated by the façade, use it directly. */
  readonly audit: SqliteAudit;
  private readonly db: Database.Database;
  private readonly log: Logger;
  private closed = false;

  constructor(options: SqliteStoreOptions) {
    this.file = options.file;
    this.log = (options.logger ?? pino({ enabled: false })).child({ component: 'sqlite-store' });
    const retention: Readonly<RetentionPolicy> = { ...DEFAULT_RETENTION, ...options.retention };
    checkRetention(retention);
    const deadLetterLimits: Readonly<DeadLetterLimits> = { ...DEFAULT_DEAD_LETTER_LIMITS, ...options.deadLetters };
    checkDeadLetterLimits(deadLetterLimits);
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw new StoreError('invalid', `busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}`);
    }
    const onDisk = !isInMemory(options.file);

    if (onDisk) {
      try {
        createPrivateFolder(path.dirname(path.resolve(options.file)));
        createPrivateFile(options.file);
      } catch (error) {
        // Like SQLite's CANTOPEN: the file system refuses now, the request is not at fault.
        throw new StoreError('unavailable', `cannot create ${options.file}: ${(error as Error).message}`, { cause: error });
      }
    }
    let db: Database.Database;
    try {
      db = new Database(options.file);
    } catch (error) {
      throw toStoreError(error, `cannot open ${options.file}`);
    }
    this.db = db;
    try {
      // busy_timeout first: switching to WAL and migrating need a lock another process may hold.
      db.pragma(`busy_timeout = ${Math.max(busyTimeoutMs, OPEN_BUSY_TIMEOUT_MS)}`);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      const found = migrateSchema(db);
      if (found !== SCHEMA_VERSION) this.log.info({ file: options.file, from: found, to: SCHEMA_VERSION }, 'migrated schema');
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      this.registry = new SqliteRegistry(db);
      this.telemetry = new SqliteTelemetry(db, {
        logger: this.log,
        compactTelemetryAfterPoints: options.compactTelemetryAfterPoints ?? DEFAULT_COMPACT_TELEMETRY_AFTER_POINTS,
        retention,
        closeDatabase: () => this.close(),
      });
      this.twins = new SqliteTwins(db);
      this.deadLetters = new SqliteDeadLetters(db, deadLetterLimits);
      this.alerts = new SqliteAlerts(db);
      this.commands = new SqliteCommands(db);
      this.dispatches = new SqliteDispatches(db, options.dispatches);
      this.tokens = new SqliteTokens(db);
      this.audit = new SqliteAudit(db);
    } catch (error) {
      db.close();
      throw toStoreError(error, `cannot prepare ${options.file}`);
    }
    // After the first transactions, so the -wal and -shm files exist if SQLite made them.
    if (onDisk) restrictFileModes(options.file, this.log);
    this.log.debug({ file: options.file, schemaVersion: SCHEMA_VERSION }, 'opened');
  }

  /** Closes the database (every port); later calls do nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      // Keeps query plans' statistics fresh at little cost (SQLite's advice for long-lived connections).
      this.db.pragma('optimize');
    } catch (error) {
      this.log.warn({ err: error }, 'optimize before close failed');
    }
    this.db.close();
    this.log.debug({ file: this.file }, 'closed');
  }

  // ---- Registry -----------------------------------------------------------

  upsertSite(site: Site): void {
    this.registry.upsertSite(site);
  }

  getSite(id: string): Site | undefined {
    return this.registry.getSite(id);
  }

  listSites(): Site[] {
    return this.registry.listSites();
  }

  createDevice(device: NewDevice, nowMs: number): DeviceRecord {
    return this.registry.createDevice(device, nowMs);
  }

  resetDeviceSecret(id: string, secretHash: string): void {
    this.registry.resetDeviceSecret(id, secretHash);
  }

  rotateDeviceSecret(id: string, secretHash: string, previousValidUntilMs: number): void {
    this.registry.rotateDeviceSecret(id, secretHash, previousValidUntilMs);
  }

  getDevice(id: string): DeviceRecord | undefined {
    return this.registry.getDevice(id);
  }

  getAcceptedSecretHashes(id: string, nowMs: number): string[] {
    return this.registry.getAcceptedSecretHashes(id, nowMs);
  }

  listDevices(filter?: { siteId?: string }): DeviceRecord[] {
    return this.registry.listDevices(filter);
  }

  revokeDevice(id: string, nowMs: number): boolean {
    return this.registry.revokeDevice(id, nowMs);
  }

  countActiveDevices(): DeviceCounts {
    return this.registry.countActiveDevices();
  }

  changeToken(): string {
    return this.registry.changeToken();
  }

  // ---- TelemetryStore -----------------------------------------------------

  writeTelemetry(points: readonly TelemetryPoint[]): Promise<WriteResult> {
    return this.telemetry.writeTelemetry(points);
  }

  /** See SqliteTelemetry.compactTelemetry. */
  compactTelemetry(): number {
    return this.telemetry.compactTelemetry();
  }

  writeRollups(rollups: readonly Rollup[]): Promise<void> {
    return this.telemetry.writeRollups(rollups);
  }

  queryTelemetry(query: TelemetryQuery): Promise<TelemetryPoint[]> {
    return this.telemetry.queryTelemetry(query);
  }

  queryRollups(query: RollupQuery): Promise<Rollup[]> {
    return this.telemetry.queryRollups(query);
  }

  queryRollupColumns(query: RollupQuery): Promise<RollupColumns[]> {
    return this.telemetry.queryRollupColumns(query);
  }

  /** See SqliteTelemetry.pruneTelemetry. */
  pruneTelemetry(nowMs: number): Promise<number> {
    return this.telemetry.pruneTelemetry(nowMs);
  }

  /** See SqliteTelemetry.pruneRollups. */
  pruneRollups(nowMs: number): Promise<PruneCounts> {
    return this.telemetry.pruneRollups(nowMs);
  }

  checkHealth(): Promise<void> {
    return this.telemetry.checkHealth();
  }

  // ---- TwinStore ----------------------------------------------------------

  saveDeviceStates(states: readonly DeviceState[]): void {
    this.twins.saveDeviceStates(states);
  }

  getDeviceState(deviceId: string): DeviceState | undefined {
    return this.twins.getDeviceState(deviceId);
  }

  listDeviceStates(deviceIds?: readonly string[]): DeviceState[] {
    return this.twins.listDeviceStates(deviceIds);
  }

  // ---- DeadLetterStore ----------------------------------------------------

  addDeadLetters(letters: readonly DeadLetter[]): void {
    this.deadLetters.addDeadLetters(letters);
  }

  listDeadLetters(query: { limit: number; reason?: string; beforeId?: number; maxBytes?: number }): StoredDeadLetter[] {
    return this.deadLetters.listDeadLetters(query);
  }

  countDeadLettersByReason(): Record<string, number> {
    return this.deadLetters.countDeadLettersByReason();
  }

  pruneDeadLetters(nowMs: number): number {
    return this.deadLetters.pruneDeadLetters(nowMs);
  }
}

export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
