import { describe, expect, it } from 'vitest';
import { href, parseRoute, sectionOf, type Route } from './route.ts';

describe('routes', () => {
  it('parses every page, the fleet by default', () => {
    expect(parseRoute('')).toEqual({ page: 'fleet' });
    expect(parseRoute('#/')).toEqual({ page: 'fleet' });
    expect(parseRoute('#/nowhere')).toEqual({ page: 'fleet' });
    expect(parseRoute('#/fleet')).toEqual({ page: 'fleet' });
    expect(parseRoute('#/sites')).toEqual({ page: 'sites', query: '' });
    expect(parseRoute('#/sites?q=north')).toEqual({ page: 'sites', query: 'north' });
    expect(parseRoute('#/sites/site-0001')).toEqual({ page: 'site', id: 'site-0001' });
    expect(parseRoute('#/alerts')).toEqual({ page: 'alerts' });
    expect(parseRoute('#/alerts/42')).toEqual({ page: 'alert', id: '42' });
    expect(parseRoute('#/dispatch')).toEqual({ page: 'dispatches' });
    expect(parseRoute('#/dispatch/0b8f')).toEqual({ page: 'dispatch', id: '0b8f' });
    expect(parseRoute('#/sites/%E0%A4%A')).toEqual({ page: 'sites', query: '' });
  });

  it('builds links that parse back to the same route', () => {
    const routes: Route[] = [
      { page: 'fleet' },
      { page: 'sites', query: '' },
      { page: 'sites', query: 'north depot' },
      { page: 'site', id: 'site.0001_a' },
      { page: 'alerts' },
      { page: 'alert', id: '7' },
      { page: 'dispatches' },
      { page: 'dispatch', id: '123e4567-e89b-12d3-a456-426614174000' },
    ];
    for (const route of routes) expect(parseRoute(href(route))).toEqual(route);
  });

  it('names the navigation section', () => {
    expect(sectionOf({ page: 'site', id: 'x' })).toBe('sites');
    expect(sectionOf({ page: 'dispatch', id: 'x' })).toBe('dispatch');
    expect(sectionOf({ page: 'alert', id: '1' })).toBe('alerts');
  });
});
