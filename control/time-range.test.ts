import { describe, expect, it } from 'vitest';
import { ControlError } from './errors.ts';
import { MAX_POINTS_PER_SERIES, parseTime, resolveTimeRange } from './time-range.ts';

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
