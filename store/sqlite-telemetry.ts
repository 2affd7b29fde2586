/**
 * TelemetryStore over SQLite: raw samples (staged, compacted and pruned
 * here) and rollups (delegated to SqliteRollups).
 *
 * A sample is stored once, idempotent on (device, ts), in one of two
 * tables: telemetry_recent, clustered by time, where new samples land (a
 * batch from thousands of devices dirties a few pages), and telemetry,
 * clustered by device, where compaction moves them (a device's history is
 * one range scan). Queries read both.
 *
 * better-sqlite3 is synchronous. The methods still return promises (the
 * port is asynchronous for server-backed stores) but do their work before
 * returning, so a resolved write is committed.
 */
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { guard, immediateTransaction, nextTurn, requireLimit, requireRange, serializeJson } from './sqlite-common.ts';
import { SqliteRollups, type PruneCounts, type RetentionPolicy } from './sqlite-rollups.ts';
import { StoreError, rollupsToColumns, type Rollup, type RollupColumns, type RollupQuery, type TelemetryPoint, type TelemetryQuery, type TelemetryStore, type WriteResult } from './types.ts';

export interface SqliteTelemetryOptions {
  logger: Logger;
  /** Compact once this process has staged this many points since its last compaction. */
  compactTelemetryAfterPoints: number;
  retention: Readonly<RetentionPolicy>;
  /** Closes the connection this store shares with the other ports. */
  closeDatabase: () => Promise<void>;
}

/** Devices pruned per transaction; bounds how long a prune holds the write lock. */
const PRUNE_DEVICES_PER_TRANSACTION = 200;
const ROLLUP_BASE_MS = 60_000;

interface TelemetryRow {
  ts: number;
  seq: number;
  metrics: string;
}

interface TelemetryParams {
  deviceId: string;
  fromMs: number;
  toMs: number;
}

/**
 * A device's samples from both tables, in time order. In telemetry_recent
 * (clustered by time) the device is a filter over the range, which stays
 * cheap because compaction keeps that table small.
 */
const SELECT_TELEMETRY = `
  SELECT ts, seq, metrics FROM telemetry WHERE device_id = @deviceId AND ts >= @fromMs AND ts < @toMs
  UNION ALL
  SELECT ts, seq, metrics FROM telemetry_recent WHERE ts >= @fromMs AND ts < @toMs AND device_id = @deviceId
  ORDER BY ts`;

function prepareStatements(db: Database.Database) {
  return {
    // A sample is new when it is in neither table; OR IGNORE catches it
    // being in telemetry_recent, NOT EXISTS in telemetry.
    stageTelemetry: db.prepare<[number, string, number, string, string, number]>(
      `INSERT OR IGNORE INTO telemetry_recent (ts, device_id, seq, metrics)
       SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM telemetry WHERE device_id = ? AND ts = ?)`,
    ),
    countRecentTelemetry: db.prepare<[], number>('SELECT COUNT(*) FROM telemetry_recent').pluck(),
    // Sorted so each device's pages in telemetry are visited once.
    moveRecentTelemetry: db.prepare<[]>(
      `INSERT OR IGNORE INTO telemetry (device_id, ts, seq, metrics)
       SELECT device_id, ts, seq, metrics FROM telemetry_recent ORDER BY device_id, ts`,
    ),
    clearRecentTelemetry: db.prepare<[]>('DELETE FROM telemetry_recent'),
    queryTelemetry: db.prepare<TelemetryParams & { limit: number }, TelemetryRow>(`${SELECT_TELEMETRY} LIMIT @limit`),
    scanTelemetry: db.prepare<TelemetryParams, TelemetryRow>(SELECT_TELEMETRY),
    // Retention of raw samples: a skip scan over devices, then one range delete each.
    nextTelemetryDevice: db.prepare<[string], string>('SELECT device_id FROM telemetry WHERE device_id > ? ORDER BY device_id LIMIT 1').pluck(),
    pruneTelemetryOfDevice: db.prepare<[string, number]>('DELETE FROM telemetry WHERE device_id = ? AND ts < ?'),
    pruneRecentTelemetry: db.prepare<[number]>('DELETE FROM telemetry_recent WHERE ts < ?'),
    health: db.prepare<[], number>('SELECT 1').pluck(),
  };
}

/** A point as written: its metrics already serialised. */
interface EncodedPoint {
  deviceId: string;
  ts: number;
  seq: number;
  metrics: string;
}

/** Throws 'invalid' for a bucket width or range that cannot be; false when the answer is empty without a read. */
function checkRollupQuery(query: RollupQuery): boolean {
  const { fromMs, toMs, bucketMs } = query;
  if (!Number.isSafeInteger(bucketMs) || bucketMs <= 0 || bucketMs % ROLLUP_BASE_MS !== 0) {
    throw new StoreError('invalid', `bucketMs must be a positive multiple of ${ROLLUP_BASE_MS}, got ${bucketMs}`);
  }
  requireRange(fromMs, toMs);
  return !(fromMs >= toMs || (query.metrics !== undefined && query.metrics.length === 0));
}

export class SqliteTelemetry implements TelemetryStore {
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly log: Logger;
  private readonly rollups: SqliteRollups;
  private readonly retention: Readonly<RetentionPolicy>;
  private readonly compactTelemetryAfterPoints: number;
  private readonly closeDatabase: () => Promise<void>;
  /** Points this process staged since it last compacted (other processes count their own). */
  private stagedPoints: number;
  private readonly insertBatch: (points: readonly EncodedPoint[]) => boolean[];
  private readonly compactNow: () => number;

  constructor(
    private readonly db: Database.Database,
    options: SqliteTelemetryOptions,
  ) {
    const stmt = prepareStatements(db);
    this.stmt = stmt;
    this.log = options.logger;
    this.retention = options.retention;
    this.compactTelemetryAfterPoints = options.compactTelemetryAfterPoints;
    this.closeDatabase = options.closeDatabase;
    this.rollups = new SqliteRollups(db, options.retention);
    // Counts what earlier runs left staged, so short-lived processes still compact.
    this.stagedPoints = stmt.countRecentTelemetry.get() ?? 0;
    this.insertBatch = immediateTransaction(db, (points: readonly EncodedPoint[]) => {
      const inserted = new Array<boolean>(points.length);
      for (let i = 0; i < points.length; i++) {
        const p = points[i]!;
        // A redelivered (device, ts) keeps the stored sample; changes says which one it was.
        inserted[i] = stmt.stageTelemetry.run(p.ts, p.deviceId, p.seq, p.metrics, p.deviceId, p.ts).changes > 0;
      }
      return inserted;
    });
    this.compactNow = immediateTransaction(db, () => {
      const moved = stmt.moveRecentTelemetry.run().changes;
      stmt.clearRecentTelemetry.run();
      return moved;
    });
  }

  /**
   * Refuses the whole batch with 'invalid', before the transaction, when a
   * point's ts or seq is not a safe integer or its metrics cannot be
   * serialised; otherwise commits it in one transaction.
   */
  async writeTelemetry(points: readonly TelemetryPoint[]): Promise<WriteResult> {
    const encoded = points.map((p): EncodedPoint => {
      if (!Number.isSafeInteger(p.ts) || !Number.isSafeInteger(p.seq)) {
        throw new StoreError('invalid', `telemetry of ${p.deviceId}: ts and seq must be integers within ±(2^53 - 1), got ts=${p.ts} seq=${p.seq}`);
      }
      return { deviceId: p.deviceId, ts: p.ts, seq: p.seq, metrics: serializeJson(`metrics of ${p.deviceId} at ${p.ts}`, p.metrics) };
    });
    if (encoded.length === 0) return { inserted: [] };
    const inserted = guard('write telemetry', () => this.insertBatch(encoded));
    this.stagedPoints += encoded.length;
    if (this.stagedPoints >= this.compactTelemetryAfterPoints) {
      // The batch is committed whatever happens here: a failed compaction is retried after the next write.
      try {
        this.compactTelemetry();
      } catch (error) {
        this.log.warn({ err: error }, 'telemetry compaction failed; will retry');
      }
    }
    return { inserted };
  }

  /**
   * Moves every staged sample from telemetry_recent into telemetry, in one
   * transaction, and returns how many moved. writeTelemetry calls it after
   * a commit once compactTelemetryAfterPoints points were staged. It blocks
   * for a time that grows with the number of devices staged (about a
   * second for 10 000 devices on a busy 2-core machine). Queries see the
   * same samples before and after.
   */
  compactTelemetry(): number {
    const moved = guard('compact telemetry', () => this.compactNow());
    this.stagedPoints = 0;
    return moved;
  }

  async writeRollups(rollups: readonly Rollup[]): Promise<void> {
    if (rollups.length === 0) return;
    guard('write rollups', () => this.rollups.write(rollups));
  }

  /** With a metric filter, `metrics` holds only the requested keys and points with none of them are skipped; `limit` counts returned points. */
  async queryTelemetry(query: TelemetryQuery): Promise<TelemetryPoint[]> {
    requireLimit(query.limit);
    requireRange(query.fromMs, query.toMs);
    const { deviceId, fromMs, toMs, limit } = query;
    if (limit === 0 || fromMs >= toMs || (query.metrics !== undefined && query.metrics.length === 0)) return [];
    return guard('query telemetry', () => {
      if (query.metrics === undefined) {
        return this.stmt.queryTelemetry.all({ deviceId, fromMs, toMs, limit }).map((row) => ({
          deviceId,
          ts: row.ts,
          seq: row.seq,
          metrics: JSON.parse(row.metrics) as Record<string, number>,
        }));
      }
      const wanted = query.metrics;
      const points: TelemetryPoint[] = [];
      // Iterate rather than LIMIT in SQL: the limit counts points that carry a wanted metric.
      for (const row of this.stmt.scanTelemetry.iterate({ deviceId, fromMs, toMs })) {
        const all = JSON.parse(row.metrics) as Record<string, number>;
        let metrics: Record<string, number> | undefined;
        for (const name of wanted) {
          const value = all[name];
          if (value !== undefined && Object.hasOwn(all, name)) (metrics ??= {})[name] = value;
        }
        if (metrics === undefined) continue;
        points.push({ deviceId, ts: row.ts, seq: row.seq, metrics });
        if (points.length >= limit) break;
      }
      return points;
    });
  }

  /**
   * bucketMs must be a positive multiple of 60 000. Coarser buckets start at
   * multiples of bucketMs since the epoch and merge the 1-minute rows of
   * [fromMs, toMs) that fall in them: min of mins, max of maxes, mean
   * weighted by count, count summed, last of the latest minute, coverage as
   * the maximum seen.
   */
  async queryRollups(query: RollupQuery): Promise<Rollup[]> {
    const { kind, entityId, fromMs, toMs, bucketMs } = query;
    if (!checkRollupQuery(query)) return [];
    const metrics = query.metrics === undefined ? undefined : serializeJson('metric names', query.metrics);
    const rows = guard('query rollups', () => this.rollups.query({ kind, entityId, fromMs, toMs, metrics, bucketMs }));
    return rows.map((row) => ({
      kind,
      entityId,
      metric: row.metric,
      bucketStartMs: row.bucket_start_ms,
      min: row.min,
      max: row.max,
      mean: row.mean,
      last: row.last,
      count: row.count,
      devicesReporting: row.devices_reporting,
      devicesTotal: row.devices_total,
    }));
  }

  /** See TelemetryStore.queryRollupColumns: 1-minute buckets straight from the rows, coarser ones from queryRollups. */
  async queryRollupColumns(query: RollupQuery): Promise<RollupColumns[]> {
    if (query.bucketMs !== ROLLUP_BASE_MS) return rollupsToColumns(await this.queryRollups(query));
    if (!checkRollupQuery(query)) return [];
    const metrics = query.metrics === undefined ? undefined : serializeJson('metric names', query.metrics);
    const { kind, entityId, fromMs, toMs } = query;
    return guard('query rollup columns', () => this.rollups.queryMinuteColumns({ kind, entityId, fromMs, toMs, metrics }));
  }

  /**
   * Deletes raw samples older than the telemetry retention and returns how
   * many. The ingest process calls it now and then (e.g. hourly); it runs a
   * batch of devices per transaction, so writers wait only briefly.
   */
  async pruneTelemetry(nowMs: number): Promise<number> {
    requireRange(nowMs, nowMs);
    if (this.retention.telemetryMs === Infinity) return 0;
    const cutoffMs = nowMs - this.retention.telemetryMs;
    let deleted = guard('prune telemetry', () => this.db.transaction(() => this.stmt.pruneRecentTelemetry.run(cutoffMs).changes).immediate());
    let after = '';
    let done = false;
    while (!done) {
      // A turn of the event loop between transactions: ingest's batches and
      // PUBACKs go on while a large store is pruned.
      await nextTurn();
      deleted += guard('prune telemetry', () =>
        this.db
          .transaction(() => {
            let n = 0;
            for (let i = 0; i < PRUNE_DEVICES_PER_TRANSACTION; i++) {
              const next = this.stmt.nextTelemetryDevice.get(after);
              if (next === undefined) {
                done = true;
                break;
              }
              n += this.stmt.pruneTelemetryOfDevice.run(next, cutoffMs).changes;
              after = next;
            }
            return n;
          })
          .immediate(),
      );
    }
    return deleted;
  }

  /**
   * Deletes rollups older than each tier's retention (rounded down to a
   * whole hour) and returns how many per tier. Coarse buckets keep the
   * history of pruned minutes. Call it with the same cadence as
   * pruneTelemetry.
   */
  async pruneRollups(nowMs: number): Promise<PruneCounts> {
    requireRange(nowMs, nowMs);
    return this.rollups.prune(nowMs, (step) => guard('prune rollups', step), nextTurn);
  }

  async checkHealth(): Promise<void> {
    guard('health check', () => this.stmt.health.get());
  }

  /** Closes the database connection, which the other ports of the same store share; later calls do nothing. */
  close(): Promise<void> {
    return this.closeDatabase();
  }
}
