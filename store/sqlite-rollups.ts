/**
 * Rollup tiers of the embedded store and their retention.
 *
 * Rollups are written as 1-minute rows (`rollups`). Two coarser tiers,
 * `rollups_15m` and `rollups_1h`, are maintained in the same transaction: a
 * new minute is merged into the coarse buckets it falls in, and a rewritten
 * minute has those buckets recomputed in SQL from the rows of the next finer
 * tier, so a coarse bucket always equals the merge of its minutes. The tiers let the finer rows be pruned early
 * (1-minute rows are the bulk of the data) while history stays queryable
 * for long, and let a wide query read one row per coarse bucket instead of
 * merging thousands of minutes.
 *
 * Merging (for coarse tiers and for coarse query buckets): min of mins, max
 * of maxes, mean weighted by count (by minutes when nothing was counted),
 * count summed, `last` of the latest minute, coverage as the maximum seen.
 *
 * Pruning removes whole hours, so a coarse bucket is either complete in the
 * finer tier or absent from it. A minute written for a bucket whose finer
 * rows are already pruned (a device flushing a buffer older than the
 * 1-minute retention) is merged into the coarse bucket instead; rewriting
 * such a minute counts it again.
 */
import type Database from 'better-sqlite3';
import { StoreError, type EntityKind, type Rollup, type RollupColumns } from './types.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** How long each kind of time series is kept; Infinity keeps it forever. */
export interface RetentionPolicy {
  /** Raw telemetry samples. */
  telemetryMs: number;
  /** 1-minute rollups. */
  rollups1mMs: number;
  /** 15-minute rollups; at least rollups1mMs. */
  rollups15mMs: number;
  /** 1-hour rollups; at least rollups15mMs. */
  rollups1hMs: number;
}

/** Raw samples and minutes for a week, 15-minute buckets for the widest query range, hours forever. */
export const DEFAULT_RETENTION: Readonly<RetentionPolicy> = {
  telemetryMs: 7 * DAY_MS,
  rollups1mMs: 7 * DAY_MS,
  rollups15mMs: 400 * DAY_MS,
  rollups1hMs: Infinity,
};

export type RollupTierName = '1m' | '15m' | '1h';

interface Tier {
  name: RollupTierName;
  table: string;
  widthMs: number;
  /** SQL of a row's minute count and latest minute; the 1-minute table has no such columns. */
  minutes: string;
  lastMinute: string;
}

/** Finest first; each width divides the next. */
export const ROLLUP_TIERS: readonly Tier[] = [
  { name: '1m', table: 'rollups', widthMs: MINUTE_MS, minutes: '1', lastMinute: 'bucket_start_ms' },
  { name: '15m', table: 'rollups_15m', widthMs: 15 * MINUTE_MS, minutes: 'minutes', lastMinute: 'last_minute_ms' },
  { name: '1h', table: 'rollups_1h', widthMs: HOUR_MS, minutes: 'minutes', lastMinute: 'last_minute_ms' },
];

export type PruneCounts = Record<RollupTierName, number>;

/** A rollup row with what merging it again needs. */
export interface TierRow {
  metric: string;
  bucket_start_ms: number;
  min: number;
  max: number;
  mean: number;
  last: number;
  count: number;
  devices_reporting: number;
  devices_total: number;
  minutes: number;
  last_minute_ms: number;
}

/** A TierRow as the raw statement gives it: its columns in tierColumns order. */
type TierRowValues = [string, number, number, number, number, number, number, number, number, number, number];

function tierRowOf(v: TierRowValues): TierRow {
  return {
    metric: v[0],
    bucket_start_ms: v[1],
    min: v[2],
    max: v[3],
    mean: v[4],
    last: v[5],
    count: v[6],
    devices_reporting: v[7],
    devices_total: v[8],
    minutes: v[9],
    last_minute_ms: v[10],
  };
}

interface SeriesKey {
  kind: EntityKind;
  entityId: string;
  metric: string;
  bucket: number;
}

/** Series (kind, entity, metric) touched by one prune transaction at most; bounds how long the write lock is held. */
const PRUNE_SERIES_PER_TRANSACTION = 500;

export function floorTo(ms: number, widthMs: number): number {
  return ms - (((ms % widthMs) + widthMs) % widthMs);
}

function ceilTo(ms: number, widthMs: number): number {
  const floored = floorTo(ms, widthMs);
  return floored === ms ? ms : floored + widthMs;
}

/** Throws StoreError 'invalid' unless every period is positive and coarser tiers are kept at least as long as finer ones. */
export function checkRetention(policy: RetentionPolicy): void {
  const problems: string[] = [];
  for (const [name, ms] of Object.entries(policy)) {
    if (!(typeof ms === 'number' && ms > 0 && (Number.isSafeInteger(ms) || ms === Infinity))) problems.push(`${name} must be a positive integer or Infinity, got ${ms}`);
  }
  if (policy.rollups15mMs < policy.rollups1mMs) problems.push('rollups15mMs must be at least rollups1mMs');
  if (policy.rollups1hMs < policy.rollups15mMs) problems.push('rollups1hMs must be at least rollups15mMs');
  if (problems.length > 0) throw new StoreError('invalid', `invalid retention: ${problems.join('; ')}`);
}

function tierColumns(tier: Tier): string {
  return `metric, bucket_start_ms, min, max, mean, last, count, devices_reporting, devices_total, ${tier.minutes} AS minutes, ${tier.lastMinute} AS last_minute_ms`;
}

const COARSE_COLUMNS = 'kind, entity_id, metric, bucket_start_ms, min, max, mean, last, count, devices_reporting, devices_total, minutes, last_minute_ms';

function prepareTierStatements(db: Database.Database, tier: Tier, finer: Tier | undefined) {
  const range = 'kind = @kind AND entity_id = @entityId AND bucket_start_ms >= @fromMs AND bucket_start_ms < @toMs';
  const select = `SELECT ${tierColumns(tier)} FROM ${tier.table} WHERE ${range}
       AND metric IN (SELECT value FROM json_each(@metrics))
     ORDER BY metric, bucket_start_ms`;
  const bucketOfFiner = 'kind = @kind AND entity_id = @entityId AND metric = @metric AND bucket_start_ms >= @bucket AND bucket_start_ms < @end';
  return {
    // Rows as arrays: better-sqlite3 makes a plain array far faster than an object with named keys, and a
    // site's day at one minute is ten thousand rows (readTier makes the objects, with one shape).
    selectOfMetrics: db.prepare<{ kind: EntityKind; entityId: string; fromMs: number; toMs: number; metrics: string }, TierRowValues>(select).raw(true),
    // Recomputes one coarse bucket from the finer tier's rows of that bucket.
    recompute:
      finer === undefined
        ? undefined
        : db.prepare<{ kind: EntityKind; entityId: string; metric: string; bucket: number; end: number }>(
            `INSERT INTO ${tier.table} (${COARSE_COLUMNS})
             SELECT @kind, @entityId, @metric, @bucket, MIN(min), MAX(max),
               CASE WHEN SUM(count) > 0 THEN SUM(mean * count) / SUM(count) ELSE SUM(mean * ${finer.minutes}) / SUM(${finer.minutes}) END,
               (SELECT last FROM ${finer.table} WHERE ${bucketOfFiner} ORDER BY bucket_start_ms DESC LIMIT 1),
               SUM(count), MAX(devices_reporting), MAX(devices_total), SUM(${finer.minutes}), MAX(${finer.lastMinute})
             FROM ${finer.table} WHERE ${bucketOfFiner}
             HAVING COUNT(*) > 0
             ON CONFLICT (kind, entity_id, metric, bucket_start_ms) DO UPDATE SET
               min = excluded.min, max = excluded.max, mean = excluded.mean, last = excluded.last, count = excluded.count,
               devices_reporting = excluded.devices_reporting, devices_total = excluded.devices_total,
               minutes = excluded.minutes, last_minute_ms = excluded.last_minute_ms`,
          ),
    // Adds one minute to a coarse bucket whose finer rows are pruned.
    mergeMinute:
      finer === undefined
        ? undefined
        : db.prepare<[string, string, string, number, number, number, number, number, number, number, number, number]>(
            `INSERT INTO ${tier.table} (${COARSE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
             ON CONFLICT (kind, entity_id, metric, bucket_start_ms) DO UPDATE SET
               min = MIN(min, excluded.min), max = MAX(max, excluded.max),
               mean = CASE WHEN count + excluded.count > 0 THEN (mean * count + excluded.mean * excluded.count) / (count + excluded.count)
                           ELSE (mean * minutes + excluded.mean) / (minutes + 1) END,
               last = CASE WHEN excluded.last_minute_ms >= last_minute_ms THEN excluded.last ELSE last END,
               count = count + excluded.count,
               devices_reporting = MAX(devices_reporting, excluded.devices_reporting),
               devices_total = MAX(devices_total, excluded.devices_total),
               minutes = minutes + 1, last_minute_ms = MAX(last_minute_ms, excluded.last_minute_ms)`,
          ),
    // Skip scan over an entity's metrics, so a range query can seek each metric's time range in the key.
    nextMetric: db.prepare<[EntityKind, string, string], string>(
      `SELECT metric FROM ${tier.table} WHERE kind = ? AND entity_id = ? AND metric > ? ORDER BY metric LIMIT 1`,
    ).pluck(),
    nextSeries: db.prepare<[string, string, string], { kind: string; entity_id: string; metric: string }>(
      `SELECT kind, entity_id, metric FROM ${tier.table} WHERE (kind, entity_id, metric) > (?, ?, ?)
       ORDER BY kind, entity_id, metric LIMIT 1`,
    ),
    pruneSeries: db.prepare<[string, string, string, number]>(
      `DELETE FROM ${tier.table} WHERE kind = ? AND entity_id = ? AND metric = ? AND bucket_start_ms < ?`,
    ),
  };
}

/** The rollup half of the SQLite telemetry store; SqliteTelemetry delegates to it. */
export class SqliteRollups {
  private readonly tiers;
  private readonly insertMinute;
  private readonly upsertMinute;
  private readonly horizons;
  private readonly raiseHorizon;
  private readonly writeBatch: (rollups: readonly Rollup[]) => void;

  constructor(
    private readonly db: Database.Database,
    private readonly retention: Readonly<RetentionPolicy>,
  ) {
    this.tiers = ROLLUP_TIERS.map((tier, i) => ({ tier, stmt: prepareTierStatements(db, tier, ROLLUP_TIERS[i - 1]) }));
    this.insertMinute = db.prepare<[string, string, string, number, number, number, number, number, number, number, number]>(
      `INSERT INTO rollups (kind, entity_id, metric, bucket_start_ms, min, max, mean, last, count, devices_reporting, devices_total)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.upsertMinute = db.prepare<[string, string, string, number, number, number, number, number, number, number, number]>(
      `INSERT INTO rollups (kind, entity_id, metric, bucket_start_ms, min, max, mean, last, count, devices_reporting, devices_total)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (kind, entity_id, metric, bucket_start_ms) DO UPDATE SET
         min = excluded.min, max = excluded.max, mean = excluded.mean, last = excluded.last, count = excluded.count,
         devices_reporting = excluded.devices_reporting, devices_total = excluded.devices_total`,
    );
    this.horizons = db.prepare<[], { tier: string; before_ms: number }>('SELECT tier, before_ms FROM rollup_horizons');
    this.raiseHorizon = db.prepare<[string, number]>(
      `INSERT INTO rollup_horizons (tier, before_ms) VALUES (?, ?)
       ON CONFLICT (tier) DO UPDATE SET before_ms = MAX(before_ms, excluded.before_ms)`,
    );
    this.writeBatch = db.transaction((rollups: readonly Rollup[]) => this.writeInTransaction(rollups)).immediate;
  }

  /** Upserts 1-minute rows and brings the coarse buckets they fall in up to date, in one transaction. */
  write(rollups: readonly Rollup[]): void {
    for (const r of rollups) {
      if (!Number.isSafeInteger(r.bucketStartMs) || r.bucketStartMs % MINUTE_MS !== 0) {
        throw new StoreError('invalid', `rollup of ${r.kind}/${r.entityId}/${r.metric}: bucketStartMs must be a whole minute, got ${r.bucketStartMs}`);
      }
    }
    if (rollups.length > 0) this.writeBatch(rollups);
  }

  /**
   * A minute written for the first time (the usual case: ingest writes each
   * closed minute once) is merged into its coarse buckets, which is exact
   * and costs one upsert per tier. A rewritten minute (a repair) replaces
   * what it had added, so its buckets are recomputed from the finer tier.
   */
  private writeInTransaction(rollups: readonly Rollup[]): void {
    const rewritten: Rollup[] = [];
    for (const r of rollups) {
      const args = [r.kind, r.entityId, r.metric, r.bucketStartMs, r.min, r.max, r.mean, r.last, r.count, r.devicesReporting, r.devicesTotal] as const;
      if (this.insertMinute.run(...args).changes > 0) {
        for (let i = 1; i < this.tiers.length; i++) {
          const bucket = floorTo(r.bucketStartMs, this.tiers[i]!.tier.widthMs);
          this.tiers[i]!.stmt.mergeMinute!.run(r.kind, r.entityId, r.metric, bucket, r.min, r.max, r.mean, r.last, r.count, r.devicesReporting, r.devicesTotal, r.bucketStartMs);
        }
      } else {
        this.upsertMinute.run(...args);
        rewritten.push(r);
      }
    }
    if (rewritten.length === 0) return;
    const horizons = this.readHorizons();
    for (let i = 1; i < this.tiers.length; i++) {
      const { tier, stmt } = this.tiers[i]!;
      const finerHorizon = horizons[this.tiers[i - 1]!.tier.name];
      const touched = new Map<string, SeriesKey>();
      for (const r of rewritten) {
        const bucket = floorTo(r.bucketStartMs, tier.widthMs);
        if (bucket >= finerHorizon) {
          touched.set(`${r.kind}\u0000${r.entityId}\u0000${r.metric}\u0000${bucket}`, { kind: r.kind, entityId: r.entityId, metric: r.metric, bucket });
        } else {
          stmt.mergeMinute!.run(r.kind, r.entityId, r.metric, bucket, r.min, r.max, r.mean, r.last, r.count, r.devicesReporting, r.devicesTotal, r.bucketStartMs);
        }
      }
      // Finer tiers first (outer loop), so an hour is recomputed from up-to-date quarters.
      for (const key of touched.values()) stmt.recompute!.run({ ...key, end: key.bucket + tier.widthMs });
    }
  }

  /** Per tier, the time before which its rows were pruned (-Infinity when never). */
  private readHorizons(): Record<RollupTierName, number> {
    const horizons: Record<RollupTierName, number> = { '1m': -Infinity, '15m': -Infinity, '1h': -Infinity };
    for (const row of this.horizons.all()) {
      if (row.tier in horizons) horizons[row.tier as RollupTierName] = row.before_ms;
    }
    return horizons;
  }

  /**
   * Rows of [fromMs, toMs) merged into buckets of bucketMs (a positive
   * multiple of a minute), in (metric, time) order. Reads the coarsest tier
   * whose width divides bucketMs for whole buckets inside the range and the
   * finer tiers for the partial buckets at its ends; where the finer rows
   * are pruned, the whole coarse bucket stands in for the partial one.
   */
  query(query: { kind: EntityKind; entityId: string; fromMs: number; toMs: number; metrics: string | undefined; bucketMs: number }): TierRow[] {
    const { bucketMs } = query;
    let level = 0;
    for (let i = this.tiers.length - 1; i > 0; i--) {
      if (bucketMs % this.tiers[i]!.tier.widthMs === 0) {
        level = i;
        break;
      }
    }
    const horizons = level > 0 ? this.readHorizons() : undefined;
    if (level === 0) {
      const rows = this.readTier(0, query, query.fromMs, query.toMs);
      return bucketMs === MINUTE_MS ? rows : mergeRows(rows, bucketMs);
    }
    const body = this.bodyOf(level, query.fromMs, query.toMs, horizons!);
    if (bucketMs !== this.tiers[level]!.tier.widthMs || body === undefined) {
      return mergeRows(this.collect(level, query, query.fromMs, query.toMs, horizons), bucketMs);
    }
    // The answer's buckets are this tier's: its rows are final as read, and
    // only the partial buckets at both ends are merged from finer tiers.
    const rows = [
      ...mergeRows(this.collect(level - 1, query, query.fromMs, body.fromMs, horizons), bucketMs),
      ...this.readTier(level, query, body.fromMs, body.toMs),
      ...mergeRows(this.collect(level - 1, query, body.toMs, query.toMs, horizons), bucketMs),
    ];
    return rows.sort(byMetricThenTime);
  }

  /**
   * The 1-minute rows as columns, straight from the statement's row arrays:
   * no object per bucket (what queryRollups gives with bucketMs = 1 minute).
   */
  queryMinuteColumns(query: { kind: EntityKind; entityId: string; fromMs: number; toMs: number; metrics: string | undefined }): RollupColumns[] {
    const out: RollupColumns[] = [];
    let columns: RollupColumns | undefined;
    for (const v of this.readTierValues(0, query, query.fromMs, query.toMs)) {
      if (columns?.metric !== v[0]) {
        columns = { metric: v[0], bucketStartMs: [], min: [], max: [], mean: [], last: [], count: [], devicesReporting: [], devicesTotal: [] };
        out.push(columns);
      }
      columns.bucketStartMs.push(v[1]);
      columns.min.push(v[2]);
      columns.max.push(v[3]);
      columns.mean.push(v[4]);
      columns.last.push(v[5]);
      columns.count.push(v[6]);
      columns.devicesReporting.push(v[7]);
      columns.devicesTotal.push(v[8]);
    }
    return out;
  }

  /** Rows of one tier in [fromMs, toMs), in (metric, time) order. */
  private readTier(level: number, query: { kind: EntityKind; entityId: string; metrics: string | undefined }, fromMs: number, toMs: number): TierRow[] {
    return this.readTierValues(level, query, fromMs, toMs).map(tierRowOf);
  }

  private readTierValues(level: number, query: { kind: EntityKind; entityId: string; metrics: string | undefined }, fromMs: number, toMs: number): TierRowValues[] {
    const { stmt } = this.tiers[level]!;
    const params = { kind: query.kind, entityId: query.entityId, fromMs, toMs };
    // Without a filter, the key would only narrow to the entity and the scan would cross every stored bucket of
    // every metric; listing the metrics first lets each one seek straight to its range.
    let metrics = query.metrics;
    if (metrics === undefined) {
      const names: string[] = [];
      for (let name = stmt.nextMetric.get(query.kind, query.entityId, ''); name !== undefined; name = stmt.nextMetric.get(query.kind, query.entityId, name)) {
        names.push(name);
      }
      if (names.length === 0) return [];
      metrics = JSON.stringify(names);
    }
    return stmt.selectOfMetrics.all({ ...params, metrics });
  }

  /** The part of [fromMs, toMs) that this tier answers whole; the ends come from finer tiers. Undefined when empty. */
  private bodyOf(level: number, fromMs: number, toMs: number, horizons: Record<RollupTierName, number>): { fromMs: number; toMs: number } | undefined {
    const finerHorizon = horizons[this.tiers[level - 1]!.tier.name];
    const width = this.tiers[level]!.tier.widthMs;
    const bodyFrom = fromMs < finerHorizon ? floorTo(fromMs, width) : ceilTo(fromMs, width);
    const bodyTo = toMs < finerHorizon ? ceilTo(toMs, width) : floorTo(toMs, width);
    return bodyFrom < bodyTo ? { fromMs: bodyFrom, toMs: bodyTo } : undefined;
  }

  private collect(
    level: number,
    query: { kind: EntityKind; entityId: string; metrics: string | undefined },
    fromMs: number,
    toMs: number,
    horizons: Record<RollupTierName, number> | undefined,
  ): TierRow[] {
    if (fromMs >= toMs) return [];
    if (level === 0) return this.readTier(0, query, fromMs, toMs);
    const body = this.bodyOf(level, fromMs, toMs, horizons!);
    if (body === undefined) return this.collect(level - 1, query, fromMs, toMs, horizons);
    return [
      ...this.collect(level - 1, query, fromMs, body.fromMs, horizons),
      ...this.readTier(level, query, body.fromMs, body.toMs),
      ...this.collect(level - 1, query, body.toMs, toMs, horizons),
    ];
  }

  /**
   * Deletes rows older than each tier's retention, rounded down to a whole
   * hour, and records how far each tier was pruned. Works one batch of
   * series per transaction, so writers wait for a short while at a time.
   */
  async prune(
    nowMs: number,
    guard: <T>(step: () => T) => T,
    nextTurn: () => Promise<void>,
  ): Promise<PruneCounts> {
    const counts: PruneCounts = { '1m': 0, '15m': 0, '1h': 0 };
    const retentionOf: Record<RollupTierName, number> = {
      '1m': this.retention.rollups1mMs,
      '15m': this.retention.rollups15mMs,
      '1h': this.retention.rollups1hMs,
    };
    for (const { tier, stmt } of this.tiers) {
      const retentionMs = retentionOf[tier.name];
      if (retentionMs === Infinity) continue;
      const cutoffMs = floorTo(nowMs - retentionMs, HOUR_MS);
      // The horizon goes first: from then on, writes into pruned buckets merge instead of recomputing.
      guard(() => this.raiseHorizon.run(tier.name, cutoffMs));
      let after: [string, string, string] = ['', '', ''];
      let done = false;
      while (!done) {
        // A turn of the event loop between transactions, so writers are not held up.
        await nextTurn();
        counts[tier.name] += guard(() =>
          this.db.transaction(() => {
            let deleted = 0;
            for (let n = 0; n < PRUNE_SERIES_PER_TRANSACTION; n++) {
              const next = stmt.nextSeries.get(...after);
              if (next === undefined) {
                done = true;
                break;
              }
              deleted += stmt.pruneSeries.run(next.kind, next.entity_id, next.metric, cutoffMs).changes;
              after = [next.kind, next.entity_id, next.metric];
            }
            return deleted;
          }).immediate(),
        );
      }
    }
    return counts;
  }
}

/** Merges tier rows into buckets of bucketMs; see the file comment for the rules. */
export function mergeRows(rows: readonly TierRow[], bucketMs: number): TierRow[] {
  interface Bucket {
    row: TierRow;
    parts: number;
    weightedSum: number;
    plainSum: number;
  }
  const buckets = new Map<string, Bucket>();
  for (const r of rows) {
    const start = floorTo(r.bucket_start_ms, bucketMs);
    const key = `${r.metric}\u0000${start}`;
    const b = buckets.get(key);
    if (b === undefined) {
      buckets.set(key, { row: { ...r, bucket_start_ms: start }, parts: 1, weightedSum: r.mean * r.count, plainSum: r.mean * r.minutes });
      continue;
    }
    const m = b.row;
    b.parts++;
    b.weightedSum += r.mean * r.count;
    b.plainSum += r.mean * r.minutes;
    if (r.min < m.min) m.min = r.min;
    if (r.max > m.max) m.max = r.max;
    if (r.last_minute_ms >= m.last_minute_ms) {
      m.last = r.last;
      m.last_minute_ms = r.last_minute_ms;
    }
    m.count += r.count;
    m.minutes += r.minutes;
    if (r.devices_reporting > m.devices_reporting) m.devices_reporting = r.devices_reporting;
    if (r.devices_total > m.devices_total) m.devices_total = r.devices_total;
  }
  const merged: TierRow[] = [];
  for (const b of buckets.values()) {
    // A bucket of one row keeps its mean exactly.
    if (b.parts > 1) b.row.mean = b.row.count > 0 ? b.weightedSum / b.row.count : b.plainSum / b.row.minutes;
    merged.push(b.row);
  }
  return merged.sort(byMetricThenTime);
}

function byMetricThenTime(a: TierRow, b: TierRow): number {
  return a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : a.bucket_start_ms - b.bucket_start_ms;
}
