/** The line protocol the InfluxDB store writes, without a server. */
import { describe, expect, it } from 'vitest';
import { MAX_NAME_CHARS, MAX_TIME_MS, MIN_TIME_MS, encodePoints, encodeRollups, nameProblem } from './influx-schema.ts';
import { splitBucket } from './influx-connection.ts';
import { timeLiteral } from './influx-query.ts';
import { StoreError } from './types.ts';

const battery = () => ({ type: 'battery' as const, siteId: 'site 1', region: 'north,east' });

describe('encodePoints', () => {
  it('writes the type as measurement, tags sorted and escaped, seq as an integer and metrics as floats, in milliseconds', () => {
    const [p] = encodePoints([{ deviceId: 'bat=1', ts: 1_700_000_000_123, seq: 7, metrics: { powerW: 5, socPct: 61.5, tiny: 1e-9, big: 1e21 } }], battery);
    expect(p).toEqual({
      measurement: 'battery',
      deviceId: 'bat=1',
      ts: 1_700_000_000_123,
      line: 'battery,device=bat\\=1,region=north\\,east,site=site\\ 1 seq=7i,powerW=5,socPct=61.5,tiny=1e-9,big=1e+21 1700000000123',
    });
  });

  it('asks the registry once per device of a batch', () => {
    const asked: string[] = [];
    encodePoints(
      [1, 2, 3].map((ts) => ({ deviceId: 'd', ts, seq: ts, metrics: {} })),
      (id) => (asked.push(id), battery()),
    );
    expect(asked).toEqual(['d']);
  });

  it('refuses what InfluxDB would not keep as given', () => {
    const refuse = (point: object, describe = battery) => expect(() => encodePoints([{ deviceId: 'd', ts: 0, seq: 0, metrics: {}, ...point }], describe)).toThrow(StoreError);
    refuse({ ts: MAX_TIME_MS + 1 });
    refuse({ ts: MIN_TIME_MS - 1 });
    refuse({ ts: 0.5 });
    refuse({ seq: 2 ** 53 });
    refuse({ metrics: { _private: 1 } });
    refuse({ metrics: { device: 1 } });
    refuse({ metrics: { 'a\tb': 1 } });
    refuse({ deviceId: 'x'.repeat(MAX_NAME_CHARS + 1) });
    refuse({}, () => ({ type: 'battery', siteId: '', region: 'r' }));
    refuse({}, () => ({ type: 'kettle' as 'battery', siteId: 's', region: 'r' }));
    expect(encodePoints([{ deviceId: 'd', ts: MAX_TIME_MS, seq: -1, metrics: {} }], battery)[0]!.line).toBe(
      `battery,device=d,region=north\\,east,site=site\\ 1 seq=-1i ${MAX_TIME_MS}`,
    );
  });
});

describe('encodeRollups', () => {
  it('writes one point of the rollups measurement per rollup', () => {
    expect(
      encodeRollups([{ kind: 'region', entityId: 'north east', metric: 'powerW', bucketStartMs: 120_000, min: -1.5, max: 2, mean: 0.25, last: 1, count: 12, devicesReporting: 3, devicesTotal: 4 }]),
    ).toEqual(['rollups,entity=north\\ east,kind=region,metric=powerW min=-1.5,max=2,mean=0.25,last=1,count=12i,devices_reporting=3i,devices_total=4i 120000']);
  });

  it('refuses a bucket that is not a whole minute, a fraction of a count, a value that is not finite, an unknown kind', () => {
    const base = { kind: 'site' as const, entityId: 's', metric: 'm', bucketStartMs: 60_000, min: 1, max: 1, mean: 1, last: 1, count: 1, devicesReporting: 1, devicesTotal: 1 };
    for (const bad of [{ bucketStartMs: 60_001 }, { count: 0.5 }, { devicesTotal: 1.5 }, { mean: Number.NaN }, { kind: 'planet' }]) {
      expect(() => encodeRollups([{ ...base, ...bad } as typeof base])).toThrow(StoreError);
    }
  });
});

describe('names, buckets and times', () => {
  it('accepts printable names and refuses empty ones, control characters and backslashes', () => {
    expect(nameProblem('powerW')).toBeUndefined();
    expect(nameProblem('site 1, north')).toBeUndefined();
    for (const bad of ['', 'a\nb', 'a\\', '\u007f']) expect(nameProblem(bad)).toBeDefined();
  });

  it('splits a 1.x bucket into database and retention policy', () => {
    expect(splitBucket('vpp')).toEqual({ database: 'vpp', retentionPolicy: undefined });
    expect(splitBucket('vpp/week')).toEqual({ database: 'vpp', retentionPolicy: 'week' });
    expect(splitBucket('vpp/')).toEqual({ database: 'vpp', retentionPolicy: undefined });
  });

  it('writes WHERE times in whole milliseconds within what InfluxDB can compare', () => {
    expect(timeLiteral(1000.5)).toBe('1001ms');
    expect(timeLiteral(0)).toBe('0ms');
    expect(timeLiteral(Number.MAX_SAFE_INTEGER)).toBe(`${MAX_TIME_MS + 1}ms`);
    expect(timeLiteral(-Number.MAX_SAFE_INTEGER)).toBe(`${MIN_TIME_MS}ms`);
  });
});
