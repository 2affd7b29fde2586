import { describe, expect, it } from 'vitest';
import type { ColumnSeries } from './api-types.ts';
import { WindowBuffer, alignColumns, powerRange, toUplotData } from './chart-buffer.ts';

function series(metric: string, ts: number[], mean: number[]): ColumnSeries {
  return { metric, ts, mean, min: mean, max: mean, last: mean, count: ts.map(() => 1) };
}

describe('alignColumns', () => {
  it('aligns series on the union of their times, in the requested order', () => {
    const aligned = alignColumns(
      [series('solarPowerW', [60_000, 180_000], [10, 30]), series('batteryPowerW', [0, 60_000, 120_000], [1, 2, 3])],
      ['batteryPowerW', 'solarPowerW', 'loadW'],
    );
    expect(aligned.ts).toEqual([0, 60_000, 120_000, 180_000]);
    expect(aligned.values).toEqual([
      [1, 2, 3, null],
      [null, 10, null, 30],
      [null, null, null, null],
    ]);
    expect(toUplotData(aligned)[0]).toEqual([0, 60, 120, 180]);
  });

  it('reads another field when asked', () => {
    const s = { ...series('socPct', [0], [50]), max: [55] };
    expect(alignColumns([s], ['socPct'], 'max').values).toEqual([[55]]);
  });
});

describe('WindowBuffer', () => {
  const HOUR = 3_600_000;

  it('keeps the last hour: history first, then live points, old points drop out', () => {
    const buffer = new WindowBuffer(HOUR, 2);
    buffer.replace({ ts: [0, 60_000, 120_000], values: [[1, 2, 3], [10, 20, 30]] });
    expect(buffer.push(121_000, [4, 40])).toBe(true);
    expect(buffer.push(122_000, [5, null])).toBe(true);
    expect(buffer.length).toBe(5);
    expect(buffer.trim(HOUR + 60_000)).toBe(1);
    expect(buffer.toAligned()).toEqual([
      [60, 120, 121, 122],
      [2, 3, 4, 5],
      [20, 30, 40, null],
    ]);
  });

  it('drops late and repeated points', () => {
    const buffer = new WindowBuffer(HOUR, 1);
    expect(buffer.push(5_000, [1])).toBe(true);
    expect(buffer.push(5_000, [2])).toBe(false);
    expect(buffer.push(4_000, [3])).toBe(false);
    expect(buffer.push(Number.NaN, [3])).toBe(false);
    expect(buffer.toAligned()).toEqual([[5], [1]]);
  });

  it('keeps live points newer than a history that arrives after them', () => {
    const buffer = new WindowBuffer(HOUR, 1);
    buffer.push(100_000, [7]);
    buffer.push(101_000, [8]);
    buffer.replace({ ts: [0, 60_000, 100_000], values: [[1, 2, 3]] });
    expect(buffer.toAligned()).toEqual([[0, 60, 100, 101], [1, 2, 3, 8]]);
    expect(buffer.lastTs).toBe(101_000);
  });

  it('stores non-numbers as gaps and answers fresh arrays', () => {
    const buffer = new WindowBuffer(HOUR, 2);
    buffer.push(1_000, [Number.POSITIVE_INFINITY, undefined]);
    const data = buffer.toAligned();
    expect(data).toEqual([[1], [null], [null]]);
    data[1]?.push(99);
    expect(buffer.toAligned()[1]).toEqual([null]);
  });

  it('empties when everything is older than the window', () => {
    const buffer = new WindowBuffer(1_000, 1);
    buffer.push(0, [1]);
    buffer.push(500, [2]);
    expect(buffer.trim(10_000)).toBe(2);
    expect(buffer.length).toBe(0);
    expect(buffer.lastTs).toBeNull();
  });
});

describe('powerRange', () => {
  it('always shows 0, with room around the data', () => {
    expect(powerRange(3000, 5000)).toEqual([0, 5400]);
    expect(powerRange(-5000, -1000)).toEqual([-5400, 0]);
    expect(powerRange(-1000, 1000)).toEqual([-1160, 1160]);
    expect(powerRange(0, 0)).toEqual([-1000, 1000]);
    expect(powerRange(null, null)).toEqual([-1000, 1000]);
  });
});
