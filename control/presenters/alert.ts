/** Alerts as the API shows them: ISO times instead of milliseconds. */
import type { Static } from '@sinclair/typebox';
import type { Alert, AlertTransition } from '../../protocol/index.ts';
import type { AlertWithTransitions } from '../../store/types.ts';
import type { AlertSchema, AlertTransitionSchema, AlertWithTransitionsSchema } from '../schemas/alerts.ts';
import { isoTime } from './device.ts';

export type AlertView = Static<typeof AlertSchema>;
export type AlertTransitionView = Static<typeof AlertTransitionSchema>;
export type AlertWithTransitionsView = Static<typeof AlertWithTransitionsSchema>;

function isoTimeOrNull(ms: number | null): string | null {
  return ms === null ? null : isoTime(ms);
}

export function presentAlert(alert: Alert): AlertView {
  return {
    id: alert.id,
    ruleId: alert.ruleId,
    severity: alert.severity,
    subjectKind: alert.subjectKind,
    subjectId: alert.subjectId,
    state: alert.state,
    summary: alert.summary,
    value: alert.value,
    labels: alert.labels,
    openedAt: isoTime(alert.openedAtMs),
    firedAt: isoTime(alert.firedAtMs),
    acknowledgedAt: isoTimeOrNull(alert.acknowledgedAtMs),
    acknowledgedBy: alert.acknowledgedBy,
    acknowledgeNote: alert.acknowledgeNote,
    resolvedAt: isoTimeOrNull(alert.resolvedAtMs),
    resolvedBy: alert.resolvedBy,
    resolveReason: alert.resolveReason,
    reopenCount: alert.reopenCount,
  };
}

export function presentAlertTransition(transition: AlertTransition): AlertTransitionView {
  return {
    seq: transition.seq,
    kind: transition.kind,
    at: isoTime(transition.atMs),
    actor: transition.actor,
    note: transition.note,
    notify: transition.notify,
  };
}

export function presentAlertWithTransitions(alert: AlertWithTransitions): AlertWithTransitionsView {
  return { ...presentAlert(alert), transitions: alert.transitions.map(presentAlertTransition) };
}
