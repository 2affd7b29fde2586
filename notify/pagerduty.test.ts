/**
 * The PagerDuty event checked against a schema of the Events API v2
 * (`POST /v2/enqueue`), with the documented limits cited per field.
 */
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { buildPagerDutyEvent, pagerDutyDedupKey } from './pagerduty.ts';
import { makeEvent } from './test-fixtures.ts';

/** ISO 8601 date-time, as PagerDuty parses `payload.timestamp`. */
const ISO_8601 = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$';

/** The routing key is the integration key of an Events API v2 integration: 32 characters. */
const routingKey = Type.String({ minLength: 32, maxLength: 32 });
/** dedup_key: at most 255 characters. */
const dedupKey = Type.String({ minLength: 1, maxLength: 255 });

const TriggerPayload = Type.Object(
  {
    /** Required; at most 1024 characters (PagerDuty cuts longer ones). */
    summary: Type.String({ minLength: 1, maxLength: 1024 }),
    /** Required: the unique location of the affected system. */
    source: Type.String({ minLength: 1 }),
    /** Required: one of critical, error, warning, info. */
    severity: Type.Union([Type.Literal('critical'), Type.Literal('error'), Type.Literal('warning'), Type.Literal('info')]),
    timestamp: Type.Optional(Type.String({ pattern: ISO_8601 })),
    component: Type.Optional(Type.String()),
    group: Type.Optional(Type.String()),
    class: Type.Optional(Type.String()),
    custom_details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

/** trigger needs a payload; acknowledge and resolve need the dedup_key of the alert they act on. */
const PagerDutyEventsV2 = Type.Union([
  Type.Object(
    { routing_key: routingKey, event_action: Type.Literal('trigger'), dedup_key: Type.Optional(dedupKey), payload: TriggerPayload },
    { additionalProperties: false },
  ),
  Type.Object(
    { routing_key: routingKey, event_action: Type.Union([Type.Literal('acknowledge'), Type.Literal('resolve')]), dedup_key: dedupKey },
    { additionalProperties: false },
  ),
]);

const options = { routingKey: 'R0123456789ABCDEF0123456789ABCDE', source: 'vpp.example.net' };

function expectValid(value: unknown): void {
  expect([...Value.Errors(PagerDutyEventsV2, value)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
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
