import { describe, expect, it } from 'vitest';
import { EMPTY_DISPATCH_FORM, buildDispatchBody, describeTarget, isOverState, parseDecimal, parseSiteIds } from './dispatch-form.ts';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);
const utc = (v: string) => Date.parse(`${v}Z`);

describe('buildDispatchBody', () => {
  it('turns kW and minutes into W and seconds', () => {
    expect(buildDispatchBody({ ...EMPTY_DISPATCH_FORM, powerKw: '20', durationMin: '30' }, NOW)).toEqual({
      ok: true,
      body: { target: { fleet: true }, powerW: 20_000, durationSeconds: 1_800 },
    });
    expect(buildDispatchBody({ ...EMPTY_DISPATCH_FORM, powerKw: '-2,5', durationMin: '60', allowPartial: true }, NOW)).toEqual({
      ok: true,
      body: { target: { fleet: true }, powerW: -2_500, durationSeconds: 3_600, allowPartial: true },
    });
  });

  it('builds region and site targets', () => {
    const region = buildDispatchBody({ ...EMPTY_DISPATCH_FORM, targetKind: 'region', region: 'north', powerKw: '1' }, NOW);
    expect(region.ok && region.body.target).toEqual({ region: 'north' });
    const sites = buildDispatchBody({ ...EMPTY_DISPATCH_FORM, targetKind: 'sites', siteIds: 'site-1, site-2\nsite-1', powerKw: '1' }, NOW);
    expect(sites.ok && sites.body.target).toEqual({ siteIds: ['site-1', 'site-2'] });
  });

  it('names every mistake next to its field', () => {
    const result = buildDispatchBody(
      { ...EMPTY_DISPATCH_FORM, targetKind: 'region', region: '', powerKw: '0', durationMin: '0.5', startAt: '2026-11-30T11:00' },
      NOW,
      utc,
    );
    expect(result.ok).toBe(false);
    if (!result.ok) expect(Object.keys(result.errors).sort()).toEqual(['duration', 'power', 'startAt', 'target']);
    const more = buildDispatchBody({ ...EMPTY_DISPATCH_FORM, powerKw: 'lots', durationMin: '1441' }, NOW);
    expect(more.ok === false && Object.keys(more.errors).sort()).toEqual(['duration', 'power']);
    const huge = buildDispatchBody({ ...EMPTY_DISPATCH_FORM, powerKw: '2000000' }, NOW);
    expect(huge.ok === false && huge.errors.power).toMatch(/1 GW/);
    const sites = buildDispatchBody({ ...EMPTY_DISPATCH_FORM, targetKind: 'sites', siteIds: ' , ', powerKw: '1' }, NOW);
    expect(sites.ok === false && sites.errors.target).toMatch(/site id/);
  });

  it('takes a start time within the API bounds, as ISO 8601', () => {
    const ok = buildDispatchBody({ ...EMPTY_DISPATCH_FORM, powerKw: '5', startAt: '2026-11-30T13:30' }, NOW, utc);
    expect(ok.ok && ok.body.startAt).toBe('2026-11-30T13:30:00.000Z');
    const far = buildDispatchBody({ ...EMPTY_DISPATCH_FORM, powerKw: '5', startAt: '2026-12-08T13:30' }, NOW, utc);
    expect(far.ok === false && far.errors.startAt).toMatch(/7 days/);
    const garbage = buildDispatchBody({ ...EMPTY_DISPATCH_FORM, powerKw: '5', startAt: 'soon' }, NOW, utc);
    expect(garbage.ok === false && garbage.errors.startAt).toBeTruthy();
  });
});

describe('helpers', () => {
  it('parses decimals typed either way', () => {
    expect(parseDecimal('2.5')).toBe(2.5);
    expect(parseDecimal('-2,5')).toBe(-2.5);
    expect(parseDecimal(' 10 ')).toBe(10);
    expect(parseDecimal('1e3')).toBe(1000);
    expect(parseDecimal('')).toBeNull();
    expect(parseDecimal('12kW')).toBeNull();
    expect(parseDecimal('1,000,5')).toBeNull();
  });

  it('splits site ids and describes targets', () => {
    expect(parseSiteIds('a b,c;;d\n\na')).toEqual(['a', 'b', 'c', 'd']);
    expect(describeTarget({ fleet: true })).toBe('the fleet');
    expect(describeTarget({ region: 'north' })).toBe('region north');
    expect(describeTarget({ siteIds: ['site-1'] })).toBe('site-1');
    expect(describeTarget({ siteIds: ['a', 'b'] })).toBe('2 sites');
  });

  it('knows which states are over', () => {
    expect(isOverState('active')).toBe(false);
    expect(isOverState('scheduled')).toBe(false);
    expect(isOverState('cancelled')).toBe(true);
  });
});
