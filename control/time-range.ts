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
// Date.parse also accepts loose forms ("March 7"); only ISO 8601 is part of the API.
const ISO_8601_PATTERN = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Parses ISO 8601 or ms since the epoch; throws a 400 naming `name`. */
export function parseTime(name: string, value: string): number {
  const text = value.trim();
  if (EPOCH_MS_PATTERN.test(text)) return Number(text);
  if (ISO_8601_PATTERN.test(text)) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms)) return ms;
  }
  throw badRequest(`${name}: '${value}' is neither an ISO 8601 time nor milliseconds since the epoch`);
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
