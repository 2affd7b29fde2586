/**
 * Alerts as the platform publishes them: on MQTT under
 * `vpp/v1/alerts/{ruleId}/{subjectId}` and to notification integrations.
 * Pure types and names, no I/O; the rules that raise alerts are in
 * alert-rules.ts.
 */

export const ALERT_SEVERITIES = ['critical', 'warning', 'info'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/** What an alert is about: one device, or an aggregate of a site, a region or the fleet. */
export const ALERT_SUBJECT_KINDS = ['device', 'site', 'region', 'fleet'] as const;
export type AlertSubjectKind = (typeof ALERT_SUBJECT_KINDS)[number];

/** The subject id of fleet-wide alerts. */
export const FLEET_SUBJECT_ID = 'fleet';

/**
 * - firing: the condition holds and nobody has acknowledged it;
 * - acknowledged: an operator took it (who, when, note); still open;
 * - resolved: the rule cleared, or an operator resolved it with a reason.
 */
export const ALERT_STATES = ['firing', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/**
 * Transitions of an alert's lifecycle. `reopened` is a resolved alert whose
 * condition came back within the rule's flapping window: the same alert
 * fires again instead of a new one.
 */
export const ALERT_TRANSITION_KINDS = ['fired', 'acknowledged', 'resolved', 'reopened'] as const;
export type AlertTransitionKind = (typeof ALERT_TRANSITION_KINDS)[number];

/** The actor of transitions made by a rule rather than by an operator. */
export const RULE_ACTOR = 'rule';

export interface Alert {
  /** Positive integer, as a string; stable for the alert's whole life, reopenings included. */
  id: string;
  ruleId: string;
  severity: AlertSeverity;
  subjectKind: AlertSubjectKind;
  subjectId: string;
  state: AlertState;
  /** The rule's summary template filled in at the latest firing. */
  summary: string;
  /** The value that made the condition hold, at the latest firing (null when the rule has none, e.g. offline). */
  value: number | null;
  /** Context for routing and display: deviceType, siteId, region where they apply. */
  labels: Record<string, string>;
  /** When the alert first fired (platform clock, or the sample time for sample-driven rules). */
  openedAtMs: number;
  /** When it last fired or was reopened. */
  firedAtMs: number;
  acknowledgedAtMs: number | null;
  acknowledgedBy: string | null;
  acknowledgeNote: string | null;
  resolvedAtMs: number | null;
  /** `rule` when the condition cleared, else the operator who resolved it. */
  resolvedBy: string | null;
  resolveReason: string | null;
  /** How many times the alert was reopened within its flapping window. */
  reopenCount: number;
}

export interface AlertTransition {
  /** Increases across all alerts, in the order transitions were stored. */
  seq: number;
  alertId: string;
  kind: AlertTransitionKind;
  atMs: number;
  /** `rule`, or the operator who acknowledged or resolved. */
  actor: string;
  /** The acknowledgement note or the resolution reason, when given. */
  note: string | null;
  /** Whether integrations are told: false for a reopening whose resolution they never heard of. */
  notify: boolean;
}

/**
 * One transition with the alert as it was right after it: what MQTT
 * subscribers and integrations receive. `eventId` is stable for the
 * transition (`{alertId}-{seq}`), so a receiver can drop repeats.
 */
export interface AlertEvent {
  eventId: string;
  alert: Alert;
  transition: AlertTransition;
}

export function alertEventId(alertId: string, seq: number): string {
  return `${alertId}-${seq}`;
}

export function isOpenAlertState(state: AlertState): boolean {
  return state !== 'resolved';
}
