/**
 * PagerDuty Events API v2 (`POST /v2/enqueue`): one event per transition,
 * all of an alert's events under one `dedup_key` (`vpp-alert-<alertId>`), so
 * PagerDuty keeps one PagerDuty alert per platform alert:
 *
 * - fired, reopened → `trigger`, with `payload` (summary at most 1024
 *   characters, source, severity, timestamp, component, group, class,
 *   custom_details); a repeated trigger on an open PagerDuty alert is
 *   merged into it by PagerDuty;
 * - acknowledged → `acknowledge`; resolved → `resolve` (no payload).
 *
 * PagerDuty answers 202 when it queued the event; 400 when the event is
 * invalid (not retried); 429 when the routing key is rate limited, and 5xx:
 * retried.
 */
import type { AlertEvent, AlertTransitionKind } from '../protocol/index.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, postJson } from './http.ts';
import { truncate } from './text.ts';
import type { Clock, HttpNotifierOptions, Notifier } from './types.ts';

export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';
export const PAGERDUTY_SUMMARY_MAX_CHARS = 1024;
export const PAGERDUTY_DEDUP_KEY_MAX_CHARS = 255;

export type PagerDutyAction = 'trigger' | 'acknowledge' | 'resolve';

export interface PagerDutyPayload {
  summary: string;
  source: string;
  severity: 'critical' | 'error' | 'warning' | 'info';
  timestamp: string;
  component: string;
  group: string;
  class: string;
  custom_details: Record<string, unknown>;
}

export interface PagerDutyEvent {
  routing_key: string;
  event_action: PagerDutyAction;
  dedup_key: string;
  payload?: PagerDutyPayload;
}

export interface PagerDutyNotifierOptions extends HttpNotifierOptions {
  /** The integration key of the PagerDuty service (a secret: never logged). */
  routingKey: string;
  url?: string;
  /** What PagerDuty shows as the affected system's location, e.g. the platform's host name. */
  source: string;
  clock?: Clock;
}

const ACTION: Record<AlertTransitionKind, PagerDutyAction> = {
  fired: 'trigger',
  reopened: 'trigger',
  acknowledged: 'acknowledge',
  resolved: 'resolve',
};

export function pagerDutyDedupKey(alertId: string): string {
  return `vpp-alert-${alertId}`;
}

export function buildPagerDutyEvent(event: AlertEvent, options: { routingKey: string; source: string }): PagerDutyEvent {
  const { alert, transition } = event;
  const action = ACTION[transition.kind];
  const base: PagerDutyEvent = { routing_key: options.routingKey, event_action: action, dedup_key: pagerDutyDedupKey(alert.id) };
  if (action !== 'trigger') return base;
  return {
    ...base,
    payload: {
      summary: truncate(alert.summary === '' ? `${alert.ruleId} on ${alert.subjectKind} ${alert.subjectId}` : alert.summary, PAGERDUTY_SUMMARY_MAX_CHARS),
      source: options.source,
      severity: alert.severity,
      timestamp: new Date(transition.atMs).toISOString(),
      component: `${alert.subjectKind}/${alert.subjectId}`,
      group: alert.labels.siteId ?? alert.labels.region ?? alert.subjectKind,
      class: alert.ruleId,
      custom_details: {
        alertId: alert.id,
        eventId: event.eventId,
        transition: transition.kind,
        state: alert.state,
        subjectKind: alert.subjectKind,
        subjectId: alert.subjectId,
        value: alert.value,
        labels: alert.labels,
        openedAt: new Date(alert.openedAtMs).toISOString(),
        reopenCount: alert.reopenCount,
      },
    },
  };
}

export function createPagerDutyNotifier(options: PagerDutyNotifierOptions): Notifier {
  const url = options.url ?? PAGERDUTY_EVENTS_URL;
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const clock = options.clock ?? Date.now;
  return {
    name: 'pagerduty',
    deliver(event, signal) {
      const body = JSON.stringify(buildPagerDutyEvent(event, options));
      return postJson({ url, body, timeoutMs, signal, nowMs: clock });
    },
  };
}
