/**
 * The PagerDuty event checked against a schema of the Events API v2
 * (`POST /v2/enqueue`), with the documented limits cited per field.
 */
import { describe, expect, it } from 'vitest';
import { buildPagerDutyEvent, pagerDutyDedupKey } from './pagerduty.ts';
import { makeEvent } from './test-fixtures.ts';
import { formatErrors, PagerDutyEventsV2 } from './test-formats.ts';

const options = { routingKey: 'R0123456789ABCDEF0123456789ABCDE', source: 'vpp.example.net' };

function expectValid(value: unknown): void {
  expect(formatErrors(PagerDutyEventsV2, value)).toEqual([]);
}

describe('PagerDuty event', () => {
  it('fired and reopened trigger, with the payload', () => {
    for (const kind of ['fired', 'reopened'] as const) {
      const event = makeEvent(kind);
      const body = buildPagerDutyEvent(event, options);
      expectValid(body);
      expect(body).toEqual({
        routing_key: options.routingKey,
        event_action: 'trigger',
        dedup_key: 'vpp-alert-42',
        payload: {
          summary: event.alert.summary,
          source: 'vpp.example.net',
          severity: 'critical',
          timestamp: new Date(event.transition.atMs).toISOString(),
          component: 'device/bat-0001',
          group: 'site-7',
          class: 'battery-overtemp',
          custom_details: expect.objectContaining({ alertId: '42', eventId: event.eventId, transition: kind, value: 61.5 }) as unknown,
        },
      });
    }
  });

  it('acknowledged and resolved act on the same dedup key, without a payload', () => {
    expect(buildPagerDutyEvent(makeEvent('acknowledged'), options)).toEqual({ routing_key: options.routingKey, event_action: 'acknowledge', dedup_key: 'vpp-alert-42' });
    expect(buildPagerDutyEvent(makeEvent('resolved'), options)).toEqual({ routing_key: options.routingKey, event_action: 'resolve', dedup_key: 'vpp-alert-42' });
    expectValid(buildPagerDutyEvent(makeEvent('acknowledged'), options));
    expectValid(buildPagerDutyEvent(makeEvent('resolved'), options));
  });

  it('stays within the limits with an oversized summary and the longest alert id', () => {
    const body = buildPagerDutyEvent(makeEvent('fired', { summary: '🔥'.repeat(5_000), id: '9'.repeat(16) }), options);
    expectValid(body);
    expect(body.payload?.summary.length).toBeLessThanOrEqual(1024);
    expect(pagerDutyDedupKey('9'.repeat(16)).length).toBeLessThanOrEqual(255);
  });

  it('maps every platform severity to a PagerDuty one', () => {
    for (const severity of ['critical', 'warning', 'info'] as const) {
      expectValid(buildPagerDutyEvent(makeEvent('fired', { severity }), options));
      expect(buildPagerDutyEvent(makeEvent('fired', { severity }), options).payload?.severity).toBe(severity);
    }
  });

  it('an empty summary falls back to rule and subject (summary is required)', () => {
    const body = buildPagerDutyEvent(makeEvent('fired', { summary: '' }), options);
    expectValid(body);
    expect(body.payload?.summary).toBe('battery-overtemp on device bat-0001');
  });
});
