/** Alert events for the adapters' tests, built by hand (the worker's tests take theirs from the real store). */
import { alertEventId, type Alert, type AlertEvent, type AlertTransitionKind } from '../protocol/index.ts';

export const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);

export function makeAlert(overrides: Partial<Alert> = {}): Alert {
  return {
    id: '42',
    ruleId: 'battery-overtemp',
    severity: 'critical',
    subjectKind: 'device',
    subjectId: 'bat-0001',
    state: 'firing',
    summary: 'Battery bat-0001 at 61.5 °C (limit 55 °C)',
    value: 61.5,
    labels: { deviceType: 'battery', siteId: 'site-7', region: 'north' },
    openedAtMs: T0,
    firedAtMs: T0,
    acknowledgedAtMs: null,
    acknowledgedBy: null,
    acknowledgeNote: null,
    resolvedAtMs: null,
    resolvedBy: null,
    resolveReason: null,
    reopenCount: 0,
    ...overrides,
  };
}

/** The event of one transition, with the alert as it is right after it. */
export function makeEvent(kind: AlertTransitionKind = 'fired', overrides: Partial<Alert> = {}, seq = 1): AlertEvent {
  const atMs = T0 + (seq - 1) * 60_000;
  const state = kind === 'acknowledged' ? 'acknowledged' : kind === 'resolved' ? 'resolved' : 'firing';
  const alert = makeAlert({
    state,
    ...(kind === 'acknowledged' ? { acknowledgedAtMs: atMs, acknowledgedBy: 'ops@example.com', acknowledgeNote: 'looking' } : {}),
    ...(kind === 'resolved' ? { resolvedAtMs: atMs, resolvedBy: 'rule' } : {}),
    ...(kind === 'reopened' ? { firedAtMs: atMs, reopenCount: 1 } : {}),
    ...overrides,
  });
  const actor = kind === 'acknowledged' ? 'ops@example.com' : 'rule';
  const note = kind === 'acknowledged' ? 'looking' : null;
  return {
    eventId: alertEventId(alert.id, seq),
    alert,
    transition: { seq, alertId: alert.id, kind, atMs, actor, note, notify: true },
  };
}
