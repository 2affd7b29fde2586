/**
 * TelemetryStore on InfluxDB: raw telemetry and rollups in the schema of
 * influx-schema.ts, written through the client's WriteApi (influx-write.ts:
 * a write resolves only once the server confirmed it), read with InfluxQL
 * on /query (influx-query.ts).
 *
 * Idempotence on (device, ts). InfluxDB overwrites a point with the same
 * measurement, tags and time (merging its fields), while the port says a
 * duplicate is not overwritten and reports which points were new (ingest
 * feeds only new samples to the rollups, so a redelivery is not counted
 * twice). So a write finds out which of its (device, ts) are stored, skips
 * those and repeats within the batch, and writes the rest:
 * - the store keeps, per device, a time after which nothing of it is
 *   stored (`newestStored`: the newest ts it wrote or found). A sample
 *   later than that is new without asking: live telemetry, which arrives in
 *   time order, costs no read;
 * - the other samples (a redelivery, a device flushing its buffer, a
 *   device first seen since this process started) are looked up with one
 *   InfluxQL request per batch (findStored). A device first seen is looked
 *   up from its earliest sample of the batch on, with no upper bound, which
 *   also gives its newest stored time.
 * Two limits, stated in store/README.md:
 * - the device must have one writer: another process writing the same
 *   device behind this one's back can make it report a stored sample new
 *   (and that sample's fields replaced). Ingest gives each device to one
 *   writer (a process, or a partition of devices), so this does not happen
 *   in the platform;
 * - a write that failed may still have stored some of its points (see
 *   influx-write.ts). This store remembers the (device, ts) of failed
 *   writes (at most maxBufferLines of them) and writes them again as new,
 *   so a retry reports them new and ingest counts them once; a process
 *   that crashed in between has forgotten them, and their redelivery
 *   reports them stored.
 *
 * Rollup tiers and retention. There is one tier, the 1-minute rows of the
 * `rollups` measurement; coarser buckets are merged by InfluxDB at query
 * time (GROUP BY time(), aligned to the epoch), with the mean weighted by
 * count through a subquery, exactly as SqliteRollups merges. Old data is
 * deleted by the server's retention policy (1.x: `CREATE RETENTION POLICY`,
 * 2.x: the bucket's retention), not by this store: there is no
 * pruneTelemetry or pruneRollups.
 *
 * With `reads: 'none'` (VictoriaMetrics, which takes the line protocol but
 * has no InfluxQL) the store only writes: duplicates within a batch are
 * still dropped, but redeliveries are written again and reported new, and
 * both queries reject with 'invalid'. See `capabilities`.
 */
import { ConfirmedWriter, DEFAULT_INFLUX_WRITE_SETTINGS, type InfluxWriteSettings } from './influx-write.ts';
import { connectInflux, toInfluxStoreError, type InfluxConnection, type InfluxConnectionOptions } from './influx-connection.ts';
import { anyOf, columnIndex, InfluxQueryClient, quoteIdentifier, quoteString, timeLiteral, type InfluxSeries } from './influx-query.ts';
import {
  DEVICE_MEASUREMENTS,
  ROLLUP_MEASUREMENT,
  RESERVED_METRIC_NAMES,
  SEQ_FIELD,
  encodePoints,
  encodeRollups,
  nameProblem,
  type DescribeDevice,
  type EncodedPoint,
} from './influx-schema.ts';
import { StoreError, rollupsToColumns, type EntityKind, type Rollup, type RollupColumns, type RollupQuery, type TelemetryPoint, type TelemetryQuery, type TelemetryStore, type WriteResult } from './types.ts';

export interface InfluxTelemetryOptions extends InfluxConnectionOptions {
  /**
   * The type, site and region of a device (tags of its points); the process
   * backs it with the registry. A point of a device it does not know is
   * refused with 'invalid'. Asked once per device of each written batch, and
   * once per telemetry query (to read only its type's measurement).
   */
  describeDevice: DescribeDevice;
  /** 'influxql' (InfluxDB 1.x, 2.x, 3.x; the default) or 'none' (a server without InfluxQL, such as VictoriaMetrics: writes only). */
  reads?: 'influxql' | 'none';
  write?: Partial<InfluxWriteSettings>;
  /** Longest wait for a whole /query answer or a /ping. */
  queryTimeoutMs?: number;
}

/** What this store can do against its server: everything against InfluxDB, neither against VictoriaMetrics (`reads: 'none'`). */
export interface InfluxCapabilities {
  /** queryTelemetry and queryRollups are served (InfluxQL). */
  reads: boolean;
  /** A (device, ts) already stored is found before writing: reported `inserted: false` and left unchanged. */
  detectsStoredDuplicates: boolean;
}

export const DEFAULT_INFLUX_QUERY_TIMEOUT_MS = 30_000;

const MINUTE_MS = 60_000;
/** Devices whose samples of a batch lie within this span are looked up in one statement (see findStored). */
const LOOKUP_SPAN_MS = 10_000;
const LOOKUP_DEVICES_PER_STATEMENT = 1_000;
const LOOKUP_STATEMENTS_PER_REQUEST = 20;
/** Devices whose newest stored time is kept; past it the map starts afresh (and devices are looked up again). */
const MAX_TRACKED_DEVICES = 1_000_000;

/** The samples of one device in a batch that need looking up, and from when to when. */
interface LookupSpan {
  measurement: string;
  deviceId: string;
  fromMs: number;
  toMs: number;
  /** First seen: looked up with no upper bound, which also gives its newest stored time. */
  open: boolean;
}

/** A regular expression literal matching exactly these values. */
function exactlyOneOf(values: readonly string[]): string {
  return `/^(?:${values.map((v) => v.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$/`;
}

const keyOf = (deviceId: string, ts: number) => `${deviceId}\u0000${ts}`;

export class InfluxTelemetry implements TelemetryStore {
  readonly capabilities: Readonly<InfluxCapabilities>;
  private readonly connection: InfluxConnection;
  private readonly writer: ConfirmedWriter;
  private readonly queries: InfluxQueryClient;
  private readonly describeDevice: DescribeDevice;
  private readonly maxUnconfirmed: number;
  /** (device, ts) of failed writes, oldest first: written again and reported new, whatever a lookup finds. */
  private readonly unconfirmed = new Set<string>();
  /** Per device, a time after which none of its samples is stored (see the file comment). */
  private readonly newestStored = new Map<string, number>();
  /** The telemetry write in progress; the next one waits for it. */
  private telemetryTurn: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(options: InfluxTelemetryOptions) {
    const reads = (options.reads ?? 'influxql') === 'influxql';
    this.capabilities = Object.freeze({ reads, detectsStoredDuplicates: reads });
    this.connection = connectInflux(options);
    const settings = { ...DEFAULT_INFLUX_WRITE_SETTINGS, ...options.write };
    this.writer = new ConfirmedWriter(this.connection, settings);
    this.maxUnconfirmed = settings.maxBufferLines;
    this.queries = new InfluxQueryClient(this.connection.transport, {
      database: this.connection.database,
      retentionPolicy: this.connection.retentionPolicy,
      timeoutMs: options.queryTimeoutMs ?? DEFAULT_INFLUX_QUERY_TIMEOUT_MS,
    });
    this.describeDevice = options.describeDevice;
  }

  /**
   * Checks the whole batch first ('invalid', nothing written: see
   * encodePoints), drops repeats within it (the first one counts), finds
   * which of the rest are stored (unless reads are 'none'), writes the new
   * ones and resolves once InfluxDB confirmed them. Rejects with
   * 'unavailable' (server down, 5xx, 429, wrong credentials, missing
   * database) or 'invalid' (a 400: the server refuses what was sent).
   * Calls run one at a time, in order, so two writes of the same sample
   * cannot both find it missing (ingest writes one batch at a time anyway).
   */
  writeTelemetry(points: readonly TelemetryPoint[]): Promise<WriteResult> {
    const turn = this.telemetryTurn.then(() => this.writeTelemetryNow(points));
    this.telemetryTurn = turn.catch(() => undefined);
    return turn;
  }

  private async writeTelemetryNow(points: readonly TelemetryPoint[]): Promise<WriteResult> {
    this.requireOpen('write telemetry');
    const encoded = encodePoints(points, this.describeDevice);
    const inserted = new Array<boolean>(points.length).fill(false);
    if (encoded.length === 0) return { inserted };
    const first = new Map<string, number>();
    encoded.forEach((p, i) => {
      const key = keyOf(p.deviceId, p.ts);
      if (!first.has(key)) first.set(key, i);
    });
    let candidates = [...first.values()];
    if (this.capabilities.detectsStoredDuplicates) {
      // Later than everything stored of its device: new without asking.
      const unsure = candidates.filter((i) => {
        const newest = this.newestStored.get(encoded[i]!.deviceId);
        return newest === undefined || encoded[i]!.ts <= newest;
      });
      if (unsure.length > 0) {
        const stored = await this.findStored(unsure.map((i) => encoded[i]!));
        candidates = candidates.filter((i) => {
          const key = keyOf(encoded[i]!.deviceId, encoded[i]!.ts);
          return !stored.has(key) || this.unconfirmed.has(key);
        });
      }
    }
    try {
      await this.writer.write(
        candidates.map((i) => encoded[i]!.line),
        'write telemetry',
      );
    } catch (error) {
      for (const i of candidates) this.rememberUnconfirmed(keyOf(encoded[i]!.deviceId, encoded[i]!.ts));
      throw error;
    }
    for (const i of candidates) {
      const { deviceId, ts } = encoded[i]!;
      inserted[i] = true;
      if (this.unconfirmed.size > 0) this.unconfirmed.delete(keyOf(deviceId, ts));
      if (this.capabilities.detectsStoredDuplicates) this.raiseNewestStored(deviceId, ts);
    }
    return { inserted };
  }

  /** Upserts: a point with the same tags and time replaces every field (all seven are always written). */
  async writeRollups(rollups: readonly Rollup[]): Promise<void> {
    this.requireOpen('write rollups');
    const lines = encodeRollups(rollups);
    if (lines.length > 0) await this.writer.write(lines, 'write rollups');
  }

  /** With a metric filter, `metrics` holds only the requested keys and points with none of them are skipped; `limit` counts returned points. */
  async queryTelemetry(query: TelemetryQuery): Promise<TelemetryPoint[]> {
    this.requireReads('query telemetry');
    const { deviceId, fromMs, toMs, limit } = query;
    requireLimit(limit);
    requireRange(fromMs, toMs);
    // A name that cannot be stored has no data.
    const wanted = query.metrics?.filter((name) => !RESERVED_METRIC_NAMES.has(name) && nameProblem(name) === undefined);
    if (limit === 0 || fromMs >= toMs || wanted?.length === 0 || nameProblem(deviceId) !== undefined) return [];
    const type = this.describeDevice(deviceId)?.type;
    // A device the registry does not know (any more) is looked for under every type.
    const measurements = type !== undefined && DEVICE_MEASUREMENTS.includes(type) ? [type] : DEVICE_MEASUREMENTS;
    const columns = wanted === undefined ? '*::field' : [SEQ_FIELD, ...wanted].map(quoteIdentifier).join(', ');
    // Fields are floats and never NaN, so `x <= 0 OR x > 0` holds exactly when x is present.
    const present = wanted === undefined ? '' : ` AND (${wanted.map((n) => `${quoteIdentifier(n)} <= 0 OR ${quoteIdentifier(n)} > 0`).join(' OR ')})`;
    const statement =
      `SELECT ${columns} FROM ${measurements.map(quoteIdentifier).join(', ')}` +
      ` WHERE "device" = ${quoteString(deviceId)} AND time >= ${timeLiteral(fromMs)} AND time < ${timeLiteral(toMs)}${present}` +
      ` LIMIT ${limit}`;
    const [series] = await this.queries.select([statement], 'query telemetry');
    const points = series!.flatMap((s) => pointsOf(deviceId, s));
    // One series per measurement, each limited: merge them.
    if (series!.length > 1) points.sort((a, b) => a.ts - b.ts);
    return points.slice(0, limit);
  }

  /**
   * bucketMs must be a positive multiple of 60 000. Coarser buckets start at
   * multiples of bucketMs since the epoch and merge the 1-minute rows of
   * [fromMs, toMs) that fall in them, in InfluxDB: min of mins, max of
   * maxes, mean weighted by count (by minutes when nothing was counted; a
   * bucket of one minute keeps its mean), count summed, last of the latest
   * minute, coverage as the maximum seen.
   */
  /** See TelemetryStore.queryRollupColumns: the rows of queryRollups, as columns. */
  async queryRollupColumns(query: RollupQuery): Promise<RollupColumns[]> {
    return rollupsToColumns(await this.queryRollups(query));
  }

  async queryRollups(query: RollupQuery): Promise<Rollup[]> {
    const { kind, entityId, fromMs, toMs, bucketMs } = query;
    if (!Number.isSafeInteger(bucketMs) || bucketMs <= 0 || bucketMs % MINUTE_MS !== 0) {
      throw new StoreError('invalid', `bucketMs must be a positive multiple of ${MINUTE_MS}, got ${bucketMs}`);
    }
    this.requireReads('query rollups');
    requireRange(fromMs, toMs);
    const metrics = query.metrics?.filter((name) => nameProblem(name) === undefined);
    if (fromMs >= toMs || metrics?.length === 0 || nameProblem(entityId) !== undefined) return [];
    const range = `time >= ${timeLiteral(fromMs)} AND time < ${timeLiteral(toMs)}`;
    const where =
      `"kind" = ${quoteString(kind)} AND "entity" = ${quoteString(entityId)}` + (metrics === undefined ? '' : ` AND ${anyOf('metric', metrics)}`) + ` AND ${range}`;
    const statement =
      bucketMs === MINUTE_MS
        ? `SELECT "min", "max", "mean", "last", "count", "devices_reporting", "devices_total" FROM "${ROLLUP_MEASUREMENT}" WHERE ${where} GROUP BY "metric"`
        : 'SELECT min("min") AS "min", max("max") AS "max", mean("mean") AS "mean", sum("weighted") AS "weighted", last("last") AS "last",' +
          ' sum("count") AS "count", max("devices_reporting") AS "devices_reporting", max("devices_total") AS "devices_total", count("mean") AS "minutes"' +
          ` FROM (SELECT "min", "max", "mean", "last", "count", "devices_reporting", "devices_total", "mean" * "count" AS "weighted"` +
          ` FROM "${ROLLUP_MEASUREMENT}" WHERE ${where} GROUP BY "metric")` +
          ` WHERE ${range} GROUP BY time(${bucketMs}ms), "metric" fill(none)`;
    const [series] = await this.queries.select([statement], 'query rollups');
    const sorted = [...series!].sort((a, b) => compareNames(a.tags.metric ?? '', b.tags.metric ?? ''));
    return sorted.flatMap((s) => rollupsOf(kind, entityId, s));
  }

  /**
   * Resolves when the server answers /ping and, with 1.x's write API, takes
   * an empty write to the database (which checks the database and the
   * credentials; 1.x and VictoriaMetrics answer 204). With the v2 API only
   * /ping is asked: a wrong token or bucket shows at the first write.
   */
  async checkHealth(): Promise<void> {
    this.requireOpen('health check');
    await this.queries.ping('health check');
    const path = this.connection.v1WritePath;
    if (path === undefined) return;
    try {
      await this.connection.transport.request(path, '', { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' } });
    } catch (error) {
      throw toInfluxStoreError('health check (empty write)', error);
    }
  }

  /** Ends writes in flight with 'unavailable' and releases the connections; later calls do nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.writer.close();
    this.connection.close();
  }

  /**
   * Which (device, ts) of these points are stored. One statement per
   * measurement and group of devices whose samples lie within
   * LOOKUP_SPAN_MS, over just that time range (from the group's first
   * sample on, with no end, for devices first seen), so the answer holds
   * about as many rows as the batch, even when one device flushes an hour
   * of buffered samples beside a fleet's live ones. Devices first seen get
   * their newest stored time recorded.
   */
  private async findStored(points: readonly EncodedPoint[]): Promise<Set<string>> {
    const spans = new Map<string, LookupSpan>();
    for (const p of points) {
      const key = `${p.measurement}\u0000${p.deviceId}`;
      const span = spans.get(key);
      if (span === undefined) {
        spans.set(key, { measurement: p.measurement, deviceId: p.deviceId, fromMs: p.ts, toMs: p.ts, open: !this.newestStored.has(p.deviceId) });
      } else {
        if (p.ts < span.fromMs) span.fromMs = p.ts;
        if (p.ts > span.toMs) span.toMs = p.ts;
      }
    }
    const sorted = [...spans.values()].sort(
      (a, b) => compareNames(a.measurement, b.measurement) || Number(a.open) - Number(b.open) || a.fromMs - b.fromMs,
    );
    const statements: string[] = [];
    /** Devices first seen, and the time their statement reads from. */
    const openFrom = new Map<string, number>();
    let group: LookupSpan[] = [];
    let fromMs = 0;
    let toMs = 0;
    const emit = () => {
      if (group.length === 0) return;
      const { measurement, open } = group[0]!;
      if (open) for (const span of group) openFrom.set(span.deviceId, fromMs);
      // The device as a column rather than GROUP BY "device": a fifth of the answer's bytes.
      statements.push(
        `SELECT ${quoteIdentifier(SEQ_FIELD)}, "device" FROM ${quoteIdentifier(measurement)}` +
          ` WHERE "device" =~ ${exactlyOneOf(group.map((s) => s.deviceId))} AND time >= ${timeLiteral(fromMs)}` +
          (open ? '' : ` AND time <= ${timeLiteral(toMs)}`),
      );
      group = [];
    };
    for (const span of sorted) {
      if (group.length > 0) {
        const head = group[0]!;
        const reach = span.open ? span.fromMs - fromMs : Math.max(toMs, span.toMs) - Math.min(fromMs, span.fromMs);
        if (span.measurement !== head.measurement || span.open !== head.open || reach > LOOKUP_SPAN_MS || group.length >= LOOKUP_DEVICES_PER_STATEMENT) emit();
      }
      if (group.length === 0) {
        fromMs = span.fromMs;
        toMs = span.toMs;
      } else {
        fromMs = Math.min(fromMs, span.fromMs);
        toMs = Math.max(toMs, span.toMs);
      }
      group.push(span);
    }
    emit();
    const stored = new Set<string>();
    const newest = new Map<string, number>();
    for (let i = 0; i < statements.length; i += LOOKUP_STATEMENTS_PER_REQUEST) {
      const answers = await this.queries.select(statements.slice(i, i + LOOKUP_STATEMENTS_PER_REQUEST), 'look up stored telemetry');
      for (const series of answers.flat()) {
        const at = columnIndex(series);
        const time = at.get('time') ?? 0;
        const device = at.get('device') ?? -1;
        for (const row of series.values) {
          const deviceId = row[device];
          const ts = row[time];
          if (typeof deviceId !== 'string' || typeof ts !== 'number') continue;
          stored.add(keyOf(deviceId, ts));
          if (openFrom.has(deviceId) && ts > (newest.get(deviceId) ?? -Infinity)) newest.set(deviceId, ts);
        }
      }
    }
    // Nothing stored from the statement's start on: everything stored is older.
    for (const [deviceId, from] of openFrom) this.raiseNewestStored(deviceId, newest.get(deviceId) ?? from - 1);
    return stored;
  }

  private raiseNewestStored(deviceId: string, ts: number): void {
    const known = this.newestStored.get(deviceId);
    if (known !== undefined && known >= ts) return;
    if (known === undefined && this.newestStored.size >= MAX_TRACKED_DEVICES) this.newestStored.clear();
    this.newestStored.set(deviceId, ts);
  }

  private rememberUnconfirmed(key: string): void {
    this.unconfirmed.delete(key);
    this.unconfirmed.add(key);
    if (this.unconfirmed.size > this.maxUnconfirmed) {
      const oldest = this.unconfirmed.values().next().value;
      if (oldest !== undefined) this.unconfirmed.delete(oldest);
    }
  }

  private requireOpen(action: string): void {
    if (this.closed) throw new StoreError('unavailable', `${action}: the InfluxDB store is closed`);
  }

  private requireReads(action: string): void {
    this.requireOpen(action);
    if (!this.capabilities.reads) {
      throw new StoreError('invalid', `${action}: this store only writes (reads: 'none', for a server without InfluxQL such as VictoriaMetrics)`);
    }
  }
}

/** Byte order for ASCII names, as SQLite's BINARY collation sorts them. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function requireLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new StoreError('invalid', `limit must be a non-negative integer, got ${limit}`);
}

function requireRange(fromMs: number, toMs: number): void {
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) throw new StoreError('invalid', `time range must be finite, got ${fromMs}..${toMs}`);
}

/** Rows of a telemetry answer as points: seq apart, every other non-null field a metric. */
function pointsOf(deviceId: string, series: InfluxSeries): TelemetryPoint[] {
  const time = series.columns.indexOf('time');
  const seq = series.columns.indexOf(SEQ_FIELD);
  const metricColumns = series.columns.map((name, i) => [name, i] as const).filter(([, i]) => i !== time && i !== seq);
  return series.values.map((row) => {
    const metrics: Record<string, number> = {};
    for (const [name, i] of metricColumns) {
      const value = row[i];
      if (typeof value === 'number') metrics[name] = value;
    }
    return { deviceId, ts: row[time] as number, seq: row[seq] as number, metrics };
  });
}

/** Rows of a rollup answer; coarse rows carry `weighted` and `minutes` for the mean. */
function rollupsOf(kind: EntityKind, entityId: string, series: InfluxSeries): Rollup[] {
  const at = columnIndex(series);
  const num = (row: unknown[], name: string) => row[at.get(name) ?? -1] as number;
  const metric = series.tags.metric ?? '';
  const coarse = at.has('minutes');
  return series.values.map((row) => {
    const count = num(row, 'count');
    let mean = num(row, 'mean');
    if (coarse && num(row, 'minutes') > 1 && count > 0) mean = num(row, 'weighted') / count;
    return {
      kind,
      entityId,
      metric,
      bucketStartMs: num(row, 'time'),
      min: num(row, 'min'),
      max: num(row, 'max'),
      mean,
      last: num(row, 'last'),
      count,
      devicesReporting: num(row, 'devices_reporting'),
      devicesTotal: num(row, 'devices_total'),
    };
  });
}
