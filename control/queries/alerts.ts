/** Reads of alerts, the configured rules and the notification outbox. */
import type { AlertRulesConfig, AlertSeverity, AlertState } from '../../protocol/index.ts';
import type { AlertOutbox, AlertStore, AlertWithTransitions, DeliveryState } from '../../store/types.ts';
import { notFound } from '../errors.ts';
import { presentAlert, presentAlertWithTransitions } from '../presenters/alert.ts';
import { ALERT_ID_PATTERN } from '../schemas/alerts.ts';

const ALERT_ID = new RegExp(ALERT_ID_PATTERN);

export interface AlertPageParams {
  limit: number;
  state?: AlertState | 'open' | undefined;
  severity?: AlertSeverity | undefined;
  subjectId?: string | undefined;
  ruleId?: string | undefined;
  before?: string | undefined;
}

/** One page of alerts, newest first; `next` continues it. */
export function queryAlerts(deps: { alerts: Pick<AlertStore, 'listAlerts'> }, params: AlertPageParams) {
  const { limit, state, severity, subjectId, ruleId, before } = params;
  // One more than asked tells whether another page exists.
  const alerts = deps.alerts.listAlerts({ limit: limit + 1, state, severity, subjectId, ruleId, beforeId: before });
  const page = alerts.slice(0, limit);
  const last = page.at(-1);
  return { alerts: page.map(presentAlert), next: alerts.length > limit && last ? last.id : null };
}

/**
 * The alert with this id, or a 404. An id that is not a positive integer
 * cannot name an alert, so it is a 404 without asking the store.
 */
export function requireAlert(deps: { alerts: Pick<AlertStore, 'getAlert'> }, id: string): AlertWithTransitions {
  const alert = ALERT_ID.test(id) ? deps.alerts.getAlert(id) : undefined;
  if (!alert) throw notFound(`alert '${id}' does not exist`);
  return alert;
}

export function queryAlert(deps: { alerts: Pick<AlertStore, 'getAlert'> }, id: string) {
  return presentAlertWithTransitions(requireAlert(deps, id));
}

/** The rules and notification routes as configured (the rules file, after validation). */
export function queryAlertRules(deps: { alertRules: AlertRulesConfig }) {
  return { rules: deps.alertRules.rules, routes: deps.alertRules.routes };
}

const DELIVERY_STATES: readonly DeliveryState[] = ['pending', 'delivered', 'dead'];

/** Deliveries of notifications by integration, each with every state counted (0 when none). */
export function queryAlertDeliveries(deps: { alerts: Pick<AlertOutbox, 'countDeliveries'> }) {
  const counts = deps.alerts.countDeliveries();
  const integrations: Record<string, Record<DeliveryState, number>> = {};
  for (const name of Object.keys(counts).sort()) {
    const byState = counts[name];
    integrations[name] = Object.fromEntries(DELIVERY_STATES.map((state) => [state, byState?.[state] ?? 0])) as Record<DeliveryState, number>;
  }
  return { integrations };
}
