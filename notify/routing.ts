/**
 * Which integrations hear of a transition. Pure.
 *
 * An integration no route names gets every event. An integration that
 * routes name gets only the events of alerts matching at least one of its
 * routes; a route matches when each criterion it gives (severities,
 * subjectKinds, ruleIds) contains the alert's value, a criterion left out
 * matching anything. `mqtt` is the platform's own bus and always gets
 * everything, whatever the routes say.
 *
 * Routing looks at the alert only (not the transition), so every
 * transition of an alert goes to the same integrations: none hears an
 * acknowledgement or a resolution of an alert it never heard fire.
 */
import type { Alert, AlertEvent, AlertSeverity, AlertSubjectKind } from '../protocol/index.ts';

export const INTEGRATIONS = ['webhook', 'slack', 'pagerduty', 'alertmanager', 'mqtt'] as const;
export type IntegrationName = (typeof INTEGRATIONS)[number];

/** Integrations that get every event whatever the routes. */
export const UNROUTED_INTEGRATIONS: readonly string[] = ['mqtt'];

export interface NotificationRoute {
  integration: string;
  severities?: AlertSeverity[];
  subjectKinds?: AlertSubjectKind[];
  ruleIds?: string[];
}

/** The configured integrations the event goes to, in `configured` order. */
export function routeEvent(event: AlertEvent, routes: readonly NotificationRoute[], configured: readonly string[]): string[] {
  return routeAlert(event.alert, routes, configured);
}

export function routeAlert(alert: Alert, routes: readonly NotificationRoute[], configured: readonly string[]): string[] {
  return configured.filter((integration) => {
    if (UNROUTED_INTEGRATIONS.includes(integration)) return true;
    const own = routes.filter((route) => route.integration === integration);
    return own.length === 0 || own.some((route) => routeMatches(route, alert));
  });
}

export function routeMatches(route: NotificationRoute, alert: Alert): boolean {
  return (
    (route.severities === undefined || route.severities.includes(alert.severity)) &&
    (route.subjectKinds === undefined || route.subjectKinds.includes(alert.subjectKind)) &&
    (route.ruleIds === undefined || route.ruleIds.includes(alert.ruleId))
  );
}
