import { describe, expect, it } from 'vitest';
import { routeEvent, type NotificationRoute } from './routing.ts';
import { makeEvent } from './test-fixtures.ts';

const ALL = ['webhook', 'slack', 'pagerduty', 'alertmanager', 'mqtt'];
const critical = makeEvent('fired', { severity: 'critical', subjectKind: 'device', ruleId: 'battery-overtemp' });
const warningSite = makeEvent('fired', { severity: 'warning', subjectKind: 'site', subjectId: 'site-7', ruleId: 'site-offline' });
const infoFleet = makeEvent('resolved', { severity: 'info', subjectKind: 'fleet', subjectId: 'fleet', ruleId: 'fleet-coverage' });

describe('routeEvent', () => {
  it('with no routes, every configured integration gets every event', () => {
    expect(routeEvent(critical, [], ALL)).toEqual(ALL);
    expect(routeEvent(infoFleet, [], ['slack', 'mqtt'])).toEqual(['slack', 'mqtt']);
  });

  it('an integration with routes gets only events matching one of them', () => {
    const routes: NotificationRoute[] = [
      { integration: 'pagerduty', severities: ['critical'] },
      { integration: 'slack', subjectKinds: ['site', 'region', 'fleet'] },
      { integration: 'slack', ruleIds: ['battery-overtemp'] },
    ];
    expect(routeEvent(critical, routes, ALL)).toEqual(ALL);
    expect(routeEvent(warningSite, routes, ALL)).toEqual(['webhook', 'slack', 'alertmanager', 'mqtt']);
    expect(routeEvent(infoFleet, routes, ALL)).toEqual(['webhook', 'slack', 'alertmanager', 'mqtt']);
    expect(routeEvent(makeEvent('fired', { severity: 'warning', ruleId: 'inverter-fault' }), routes, ALL)).toEqual(['webhook', 'alertmanager', 'mqtt']);
  });

  it('a route matches only when every criterion it gives matches', () => {
    const routes: NotificationRoute[] = [{ integration: 'pagerduty', severities: ['critical'], subjectKinds: ['site'] }];
    expect(routeEvent(critical, routes, ['pagerduty'])).toEqual([]);
    expect(routeEvent(makeEvent('fired', { severity: 'critical', subjectKind: 'site' }), routes, ['pagerduty'])).toEqual(['pagerduty']);
  });

  it('an empty criterion matches nothing (a route that silences its integration)', () => {
    expect(routeEvent(critical, [{ integration: 'slack', severities: [] }], ['slack', 'webhook'])).toEqual(['webhook']);
  });

  it('never routes mqtt away', () => {
    expect(routeEvent(infoFleet, [{ integration: 'mqtt', severities: ['critical'] }], ['mqtt'])).toEqual(['mqtt']);
  });

  it('only configured integrations, in configured order; routes for others are ignored', () => {
    expect(routeEvent(critical, [{ integration: 'opsgenie' }], ['slack', 'webhook'])).toEqual(['slack', 'webhook']);
  });

  it('routes every transition of an alert alike (it looks at the alert, not the transition)', () => {
    const routes: NotificationRoute[] = [{ integration: 'pagerduty', severities: ['critical'] }];
    for (const kind of ['fired', 'acknowledged', 'resolved', 'reopened'] as const) {
      expect(routeEvent(makeEvent(kind), routes, ['pagerduty'])).toEqual(['pagerduty']);
    }
  });
});
