/**
 * The schema of the time series in InfluxDB, and the checks and line
 * protocol encoding of what is written into it.
 *
 *   battery, solar, meter         one measurement per device type
 *     tags    device, region, site  (from the registry, see DescribeDevice)
 *     fields  seq (integer), and one float field per metric (powerW, socPct, …)
 *     time    the sample's ts, written with millisecond precision
 *
 *   rollups
 *     tags    kind (device, site, region, fleet), entity, metric
 *     fields  min, max, mean, last (float); count, devices_reporting, devices_total (integer)
 *     time    bucketStartMs (a whole minute)
 *
 * Why so: a device type has a fixed set of metrics, so a measurement per type
 * keeps each measurement's fields few and dense; tags are what queries select
 * and group by (a device, a site, a region), fields are values. Metrics are
 * always floats (a metric first seen as 5 must not make the field an
 * integer: InfluxDB fixes a field's type per shard and refuses the other
 * type), seq always an integer.
 *
 * Everything is checked before anything is written, so a batch is refused
 * whole ('invalid') or sent whole.
 */
import { escape } from '@influxdata/influxdb-client';
import type { DeviceType } from '../protocol/index.ts';
import { StoreError, type EntityKind, type Rollup, type TelemetryPoint } from './types.ts';

/** What the schema needs to know about a device that a TelemetryPoint does not carry. */
export interface DeviceDescription {
  type: DeviceType;
  siteId: string;
  region: string;
}

/** The registry's answer for a device; undefined for a device it does not know. */
export type DescribeDevice = (deviceId: string) => DeviceDescription | undefined;

export const DEVICE_MEASUREMENTS: readonly DeviceType[] = ['battery', 'solar', 'meter'];
export const ROLLUP_MEASUREMENT = 'rollups';
export const SEQ_FIELD = 'seq';
export const ROLLUP_FLOAT_FIELDS = ['min', 'max', 'mean', 'last'] as const;
export const ROLLUP_INTEGER_FIELDS = ['count', 'devices_reporting', 'devices_total'] as const;

/**
 * Names a metric may not have: the seq field, InfluxDB's `time`, and the tag
 * keys (a field named like a tag makes every query of it ambiguous).
 */
export const RESERVED_METRIC_NAMES: ReadonlySet<string> = new Set([SEQ_FIELD, 'time', 'device', 'site', 'region']);

/**
 * The times InfluxDB can store, in whole milliseconds: it keeps int64
 * nanoseconds since the epoch (about 1677-09-21 to 2262-04-11). One
 * millisecond is kept free above MAX_TIME_MS, so that `time < MAX_TIME_MS + 1`
 * still reads every point.
 */
export const MIN_TIME_MS = -9_223_372_036_854;
export const MAX_TIME_MS = 9_223_372_036_853;

/** Longest id, site, region or metric name written as a tag or field key (UTF-16 units). */
export const MAX_NAME_CHARS = 256;

const ENTITY_KINDS: ReadonlySet<EntityKind> = new Set(['device', 'site', 'region', 'fleet']);
const MINUTE_MS = 60_000;

/**
 * A name InfluxDB keeps as given: not empty, at most MAX_NAME_CHARS, no
 * control characters (the line protocol cannot carry a newline, and the
 * client's `\n` escape would be stored literally) and no backslash (a
 * trailing one escapes the separator after it). Undefined when fine,
 * otherwise what is wrong.
 */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_NAME_CHARS) return `is longer than ${MAX_NAME_CHARS} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(name)) return 'contains a control character or a backslash';
  return undefined;
}

function requireName(what: string, name: string): void {
  const problem = nameProblem(name);
  if (problem !== undefined) throw new StoreError('invalid', `${what} ${JSON.stringify(name.slice(0, MAX_NAME_CHARS))} ${problem}`);
}

function requireTime(what: string, ms: number): void {
  if (!Number.isSafeInteger(ms) || ms < MIN_TIME_MS || ms > MAX_TIME_MS) {
    throw new StoreError('invalid', `${what} must be an integer from ${MIN_TIME_MS} to ${MAX_TIME_MS} ms (InfluxDB's range), got ${ms}`);
  }
}

/** Float field value as the line protocol reads it back exactly (String() round-trips a double). */
function floatValue(what: string, value: number): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new StoreError('invalid', `${what} must be a finite number, got ${String(value)}`);
  return String(value);
}

function integerValue(what: string, value: number): string {
  if (!Number.isSafeInteger(value)) throw new StoreError('invalid', `${what} must be an integer within ±(2^53 - 1), got ${value}`);
  return `${value}i`;
}

/** A point as it will be written: its line, and what identifies it. */
export interface EncodedPoint {
  measurement: DeviceType;
  deviceId: string;
  ts: number;
  line: string;
}

/**
 * Checks a batch and encodes each point as a line; throws 'invalid' for the
 * first problem (a ts or seq that is not a safe integer or outside
 * InfluxDB's time range, a metric that is not a finite number or has a
 * reserved or unusable name, a device the registry does not know).
 * `describe` is asked once per device of the batch.
 */
export function encodePoints(points: readonly TelemetryPoint[], describe: DescribeDevice): EncodedPoint[] {
  const described = new Map<string, DeviceDescription | undefined>();
  return points.map((p) => {
    requireName('device id', p.deviceId);
    requireTime(`ts of ${p.deviceId}`, p.ts);
    if (!Number.isSafeInteger(p.seq)) {
      throw new StoreError('invalid', `telemetry of ${p.deviceId}: seq must be an integer within ±(2^53 - 1), got ${p.seq}`);
    }
    let device = described.get(p.deviceId);
    if (!described.has(p.deviceId)) {
      device = describe(p.deviceId);
      described.set(p.deviceId, device);
    }
    if (device === undefined) throw new StoreError('invalid', `telemetry of ${p.deviceId}: the registry does not know the device (its type, site and region are tags)`);
    if (!DEVICE_MEASUREMENTS.includes(device.type)) throw new StoreError('invalid', `telemetry of ${p.deviceId}: unknown device type ${JSON.stringify(device.type)}`);
    requireName(`site of ${p.deviceId}`, device.siteId);
    requireName(`region of ${p.deviceId}`, device.region);
    if (p.metrics === null || typeof p.metrics !== 'object') throw new StoreError('invalid', `metrics of ${p.deviceId} at ${p.ts} must be an object`);
    let fields = `${SEQ_FIELD}=${p.seq}i`;
    for (const name of Object.keys(p.metrics)) {
      requireName(`metric of ${p.deviceId}`, name);
      if (RESERVED_METRIC_NAMES.has(name) || name.startsWith('_')) {
        throw new StoreError('invalid', `metric of ${p.deviceId}: ${JSON.stringify(name)} is reserved (the schema's own field or tag, or a leading underscore)`);
      }
      fields += `,${escape.tag(name)}=${floatValue(`metric ${name} of ${p.deviceId} at ${p.ts}`, p.metrics[name]!)}`;
    }
    // Tags sorted by key, as InfluxDB stores them.
    const line = `${device.type},device=${escape.tag(p.deviceId)},region=${escape.tag(device.region)},site=${escape.tag(device.siteId)} ${fields} ${p.ts}`;
    return { measurement: device.type, deviceId: p.deviceId, ts: p.ts, line };
  });
}

/**
 * Checks rollups and encodes each as a line of the `rollups` measurement;
 * throws 'invalid' for a bucket that is not a whole minute, a value that is
 * not finite, a count or coverage that is not an integer, an unknown kind or
 * an unusable name.
 */
export function encodeRollups(rollups: readonly Rollup[]): string[] {
  return rollups.map((r) => {
    const what = `rollup of ${r.kind}/${r.entityId}/${r.metric}`;
    if (!ENTITY_KINDS.has(r.kind)) throw new StoreError('invalid', `${what}: unknown kind`);
    requireName(`${what}: entity`, r.entityId);
    requireName(`${what}: metric`, r.metric);
    requireTime(`${what}: bucketStartMs`, r.bucketStartMs);
    if (r.bucketStartMs % MINUTE_MS !== 0) throw new StoreError('invalid', `${what}: bucketStartMs must be a whole minute, got ${r.bucketStartMs}`);
    const fields = [
      `min=${floatValue(`${what}: min`, r.min)}`,
      `max=${floatValue(`${what}: max`, r.max)}`,
      `mean=${floatValue(`${what}: mean`, r.mean)}`,
      `last=${floatValue(`${what}: last`, r.last)}`,
      `count=${integerValue(`${what}: count`, r.count)}`,
      `devices_reporting=${integerValue(`${what}: devicesReporting`, r.devicesReporting)}`,
      `devices_total=${integerValue(`${what}: devicesTotal`, r.devicesTotal)}`,
    ].join(',');
    return `${ROLLUP_MEASUREMENT},entity=${escape.tag(r.entityId)},kind=${r.kind},metric=${escape.tag(r.metric)} ${fields} ${r.bucketStartMs}`;
  });
}
