import { describe, expect, it } from 'vitest';
import { ControlError } from './errors.ts';
import { MAX_POINTS_PER_SERIES, MAX_TIME_MS, parseTime, resolveTimeRange } from './time-range.ts';

const NOW = Date.UTC(2024, 2, 1, 12, 0, 0);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function badRequestMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).statusCode).toBe(400);
    return (err as ControlError).message;
  }
  throw new Error('expected a 400');
}

describe('parseTime', () => {
  it('reads ms since the epoch and ISO 8601 with and without offset', () => {
    expect(parseTime('from', '1709294400000')).toBe(NOW);
    expect(parseTime('from', '2024-03-01T12:00:00Z')).toBe(NOW);
    expect(parseTime('from', '2024-03-01T13:30:00+01:30')).toBe(NOW);
    expect(parseTime('from', '2024-03-01T12:00:00.000Z')).toBe(NOW);
  });

  it('rejects loose date forms and names the parameter', () => {
    expect(badRequestMessage(() => parseTime('to', 'March 1, 2024'))).toMatch(/^to: /);
    expect(badRequestMessage(() => parseTime('from', '-5'))).toMatch(/^from: /);
    expect(badRequestMessage(() => parseTime('from', '2024-13-45T99:00:00Z'))).toMatch(/^from: /);
  });

  it('refuses impossible calendar dates instead of rolling them into the next month', () => {
    expect(badRequestMessage(() => parseTime('from', '2026-02-31'))).toBe("from: '2026-02-31' is not a real time: February 2026 has no day 31 (it has 28 days)");
    expect(badRequestMessage(() => parseTime('to', '2023-02-29T00:00:00Z'))).toMatch(/^to: .*February 2023 has no day 29/);
    expect(badRequestMessage(() => parseTime('to', '2024-04-31T00:00:00Z'))).toMatch(/April 2024 has no day 31/);
    expect(badRequestMessage(() => parseTime('to', '2024-00-10'))).toMatch(/month 00 does not exist/);
    expect(badRequestMessage(() => parseTime('to', '2024-03-01T24:00:00Z'))).toMatch(/24:00:00 is not a time of day/);
    expect(badRequestMessage(() => parseTime('to', '2024-03-01T12:60Z'))).toMatch(/12:60:00 is not a time of day/);
    expect(badRequestMessage(() => parseTime('to', '2024-03-01T12:00:00+24:00'))).toMatch(/\+24:00 is not a UTC offset/);
    // Leap days and month ends that exist are accepted.
    expect(parseTime('from', '2024-02-29')).toBe(Date.UTC(2024, 1, 29));
    expect(parseTime('from', '2000-02-29T23:59:59.999Z')).toBe(Date.UTC(2000, 1, 29, 23, 59, 59, 999));
  });

  it('reads a time without offset as UTC and cuts digits beyond milliseconds', () => {
    expect(parseTime('from', '2024-03-01T12:00')).toBe(NOW);
    expect(parseTime('from', '2024-03-01')).toBe(Date.UTC(2024, 2, 1));
    expect(parseTime('from', '2024-03-01T12:00:00.123456789Z')).toBe(NOW + 123);
    expect(parseTime('from', '2024-03-01T07:00:00-0500')).toBe(NOW);
  });

  it('refuses times before the epoch or after year 9999', () => {
    expect(badRequestMessage(() => parseTime('to', '999999999999999'))).toBe(
      "to: '999999999999999' is after 9999-12-31T23:59:59.999Z, the latest time accepted",
    );
    expect(badRequestMessage(() => parseTime('to', String(MAX_TIME_MS + 1)))).toMatch(/^to: .*after 9999-12-31/);
    expect(parseTime('to', String(MAX_TIME_MS))).toBe(MAX_TIME_MS);
    expect(parseTime('to', '9999-12-31T23:59:59.999Z')).toBe(MAX_TIME_MS);
    expect(badRequestMessage(() => parseTime('from', '1969-12-31T23:59:59Z'))).toMatch(/^from: .*before 1970-01-01T00:00:00.000Z/);
    expect(badRequestMessage(() => parseTime('from', '0001-01-01'))).toMatch(/^from: .*earliest time accepted/);
    expect(parseTime('from', '0')).toBe(0);
  });
});

describe('resolveTimeRange', () => {
  it('defaults to the hour before now', () => {
    expect(resolveTimeRange({}, 'raw', NOW)).toEqual({ fromMs: NOW - HOUR, toMs: NOW });
    expect(resolveTimeRange({ to: String(NOW - DAY) }, '1m', NOW)).toEqual({ fromMs: NOW - DAY - HOUR, toMs: NOW - DAY });
    expect(resolveTimeRange({ from: String(NOW - 2 * HOUR) }, 'raw', NOW)).toEqual({ fromMs: NOW - 2 * HOUR, toMs: NOW });
  });

  it('requires from before to', () => {
    expect(badRequestMessage(() => resolveTimeRange({ from: String(NOW), to: String(NOW) }, 'raw', NOW))).toMatch(/^from: .*before to/);
  });

  it('bounds raw queries to 7 days and rollups to 400 days', () => {
    expect(resolveTimeRange({ from: String(NOW - 7 * DAY) }, 'raw', NOW).fromMs).toBe(NOW - 7 * DAY);
    expect(badRequestMessage(() => resolveTimeRange({ from: String(NOW - 7 * DAY - 1) }, 'raw', NOW))).toMatch(/raw query spans at most 7 d/);
    expect(resolveTimeRange({ from: String(NOW - 400 * DAY) }, '1h', NOW).fromMs).toBe(NOW - 400 * DAY);
    expect(badRequestMessage(() => resolveTimeRange({ from: String(NOW - 401 * DAY) }, '1h', NOW))).toMatch(/at most 400 d/);
  });

  it('asks for a coarser resolution when a series would be too long', () => {
    const rangeMs = (MAX_POINTS_PER_SERIES + 1) * 60_000;
    expect(badRequestMessage(() => resolveTimeRange({ from: String(NOW - rangeMs) }, '1m', NOW))).toMatch(/^resolution: .*coarser/);
    expect(resolveTimeRange({ from: String(NOW - rangeMs) }, '5m', NOW).fromMs).toBe(NOW - rangeMs);
  });
});
