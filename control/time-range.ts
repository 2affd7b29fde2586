/**
 * Time ranges and resolutions of history queries. Pure functions: the
 * caller passes the current time. Every failure names the parameter at
 * fault, because the operator reads it.
 */
import { badRequest } from './errors.ts';

export const RESOLUTIONS = ['raw', '1m', '5m', '15m', '1h'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];
export type RollupResolution = Exclude<Resolution, 'raw'>;
export const ROLLUP_RESOLUTIONS: readonly RollupResolution[] = ['1m', '5m', '15m', '1h'];

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export const BUCKET_MS: Readonly<Record<RollupResolution, number>> = {
  '1m': MINUTE_MS,
  '5m': 5 * MINUTE_MS,
  '15m': 15 * MINUTE_MS,
  '1h': HOUR_MS,
};

/** Range when the caller gives neither end (or only one). */
export const DEFAULT_RANGE_MS = HOUR_MS;
/** Widest range of a raw query: raw samples arrive every few seconds. */
export const MAX_RAW_RANGE_MS = 7 * DAY_MS;
/** Widest range of a rollup query. */
export const MAX_ROLLUP_RANGE_MS = 400 * DAY_MS;
/** Most buckets per metric in one rollup answer; a wider range needs a coarser resolution. */
export const MAX_POINTS_PER_SERIES = 10_000;

const EPOCH_MS_PATTERN = /^\d{1,15}$/;
// Date.parse also accepts loose forms ("March 7") and rolls impossible dates
// over (2026-02-31 becomes March 3), so the fields are read and checked here.
const ISO_8601_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):?(\d{2}))?)?$/;

/** Earliest time a query may name: the Unix epoch, where telemetry timestamps start. */
export const MIN_TIME_MS = 0;
/** Latest time a query may name: the end of year 9999, the last that ISO 8601 writes with four digits. */
export const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function daysInMonth(year: number, month: number): number {
  // Day 0 of the next month is the last day of this one; setUTCFullYear keeps years below 100 as they are.
  const date = new Date(0);
  date.setUTCFullYear(year, month, 0);
  return date.getUTCDate();
}

const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Milliseconds of an ISO 8601 match, or the reason it names no real time. A time without offset is UTC. */
function isoToMs(match: RegExpExecArray): number | string {
  const [, y, mo, d, h = '00', mi = '00', s = '00', fraction = '', zone, sign, offsetH = '00', offsetM = '00'] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const [hour, minute, second] = [Number(h), Number(mi), Number(s)];
  if (month < 1 || month > 12) return `month ${mo} does not exist`;
  const lastDay = daysInMonth(year, month);
  if (day < 1 || day > lastDay) return `${MONTH_NAMES[month - 1]} ${year} has no day ${d} (it has ${lastDay} days)`;
  if (hour > 23 || minute > 59 || second > 59) return `${h}:${mi}:${s} is not a time of day`;
  if (zone !== undefined && zone !== 'Z' && (Number(offsetH) > 23 || Number(offsetM) > 59)) {
    return `${sign}${offsetH}:${offsetM} is not a UTC offset`;
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  // Digits beyond milliseconds are cut, not rounded, so a time never moves into the next millisecond.
  date.setUTCHours(hour, minute, second, Number(fraction.padEnd(3, '0').slice(0, 3)));
  const offsetMs = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(offsetH) * 60 + Number(offsetM)) * 60_000;
  return date.getTime() - offsetMs;
}

/**
 * Parses ISO 8601 (a time without offset is UTC) or ms since the epoch;
 * throws a 400 naming `name` for anything else, for impossible calendar
 * dates and for times outside [MIN_TIME_MS, MAX_TIME_MS].
 */
export function parseTime(name: string, value: string): number {
  const text = value.trim();
  let ms: number;
  if (EPOCH_MS_PATTERN.test(text)) {
    ms = Number(text);
  } else {
    const match = ISO_8601_PATTERN.exec(text);
    if (!match) throw badRequest(`${name}: '${value}' is neither an ISO 8601 time nor milliseconds since the epoch`);
    const parsed = isoToMs(match);
    if (typeof parsed === 'string') throw badRequest(`${name}: '${value}' is not a real time: ${parsed}`);
    ms = parsed;
  }
  if (ms < MIN_TIME_MS) throw badRequest(`${name}: '${value}' is before ${new Date(MIN_TIME_MS).toISOString()}, the earliest time accepted`);
  if (ms > MAX_TIME_MS) throw badRequest(`${name}: '${value}' is after ${new Date(MAX_TIME_MS).toISOString()}, the latest time accepted`);
  return ms;
}

export interface TimeRange {
  fromMs: number;
  /** Exclusive. */
  toMs: number;
}

/**
 * Resolves optional `from`/`to` against now: `to` defaults to now and `from`
 * to one hour before `to`. Checks from < to and the widest range of the
 * resolution.
 */
export function resolveTimeRange(
  params: { from?: string | undefined; to?: string | undefined },
  resolution: Resolution,
  nowMs: number,
): TimeRange {
  const toMs = params.to === undefined ? nowMs : parseTime('to', params.to);
  const fromMs = params.from === undefined ? toMs - DEFAULT_RANGE_MS : parseTime('from', params.from);
  if (fromMs >= toMs) {
    throw badRequest(`from: ${new Date(fromMs).toISOString()} must be before to (${new Date(toMs).toISOString()})`);
  }
  const rangeMs = toMs - fromMs;
  if (resolution === 'raw') {
    if (rangeMs > MAX_RAW_RANGE_MS) {
      throw badRequest(`from/to: a raw query spans at most ${formatDuration(MAX_RAW_RANGE_MS)}, not ${formatDuration(rangeMs)}; ask for a resolution such as 1m`);
    }
    return { fromMs, toMs };
  }
  if (rangeMs > MAX_ROLLUP_RANGE_MS) {
    throw badRequest(`from/to: a query spans at most ${formatDuration(MAX_ROLLUP_RANGE_MS)}, not ${formatDuration(rangeMs)}`);
  }
  const points = Math.ceil(rangeMs / BUCKET_MS[resolution]);
  if (points > MAX_POINTS_PER_SERIES) {
    throw badRequest(
      `resolution: ${formatDuration(rangeMs)} at ${resolution} is ${points} points per metric, more than ${MAX_POINTS_PER_SERIES}; ask for a coarser resolution or a shorter range`,
    );
  }
  return { fromMs, toMs };
}

function formatDuration(ms: number): string {
  if (ms % DAY_MS === 0) return `${ms / DAY_MS} d`;
  if (ms >= DAY_MS) return `${(ms / DAY_MS).toFixed(1)} d`;
  if (ms >= HOUR_MS) return `${(ms / HOUR_MS).toFixed(1)} h`;
  return `${Math.round(ms / 1000)} s`;
}
