/** Ordering and grouping of alerts for the alerts page. Pure. */
import type { Alert, AlertRule, AlertSeverity } from './api-types.ts';
import { MISSING, formatMetric, formatNumber, joinUnit, parseIso } from './format.ts';

/** Most urgent first. A Record over AlertSeverity, so a new severity in protocol/ fails to compile here. */
export const SEVERITY_RANK: Readonly<Record<AlertSeverity, number>> = { critical: 0, warning: 1, info: 2 };
export const SEVERITIES_BY_RANK = (Object.keys(SEVERITY_RANK) as AlertSeverity[]).sort((a, b) => SEVERITY_RANK[a] - SEVERITY_RANK[b]);

export interface AlertGroup {
  severity: AlertSeverity;
  alerts: Alert[];
}

/**
 * Open alerts by severity (critical, warning, info; empty groups left out),
 * within a group firing before acknowledged (what nobody has taken yet comes
 * first), then the most recently fired first.
 */
export function groupBySeverity(alerts: readonly Alert[]): AlertGroup[] {
  const groups = new Map<AlertSeverity, Alert[]>();
  for (const alert of alerts) {
    const list = groups.get(alert.severity) ?? [];
    list.push(alert);
    groups.set(alert.severity, list);
  }
  const stateRank = (a: Alert) => (a.state === 'firing' ? 0 : a.state === 'acknowledged' ? 1 : 2);
  return SEVERITIES_BY_RANK.filter((s) => groups.has(s)).map((severity) => ({
    severity,
    alerts: (groups.get(severity) ?? []).sort(
      (a, b) => stateRank(a) - stateRank(b) || (parseIso(b.firedAt) ?? 0) - (parseIso(a.firedAt) ?? 0) || Number(b.id) - Number(a.id),
    ),
  }));
}

/** Where an alert's subject lives in the dashboard: its site's page when it has one. */
export function subjectSiteId(alert: Pick<Alert, 'subjectKind' | 'subjectId' | 'labels'>): string | null {
  if (alert.subjectKind === 'site') return alert.subjectId;
  if (alert.subjectKind === 'device') return alert.labels.siteId ?? null;
  return null;
}

/** Merges a page of older alerts into a list, dropping repeats (by id). */
export function appendPage(held: readonly Alert[], page: readonly Alert[]): Alert[] {
  const seen = new Set(held.map((a) => a.id));
  return [...held, ...page.filter((a) => !seen.has(a.id))];
}

/**
 * An alert's value with its unit, from the rule that raised it: a threshold
 * or frozen rule's value is its metric's ("65.0 °C"), a rate of change is per
 * minute ("12.0 %/min"); without the rule, the bare number.
 */
export function alertValueText(value: number | null, rule: AlertRule | undefined): string {
  if (value === null) return MISSING;
  if (rule?.kind === 'threshold') return joinUnit(formatMetric(rule.threshold.metric, value));
  if (rule?.kind === 'frozen') return joinUnit(formatMetric(rule.frozen.metric, value));
  if (rule?.kind === 'rateOfChange') return `${joinUnit(formatMetric(rule.rateOfChange.metric, value))}/min`;
  return joinUnit(formatNumber(value, ''));
}
