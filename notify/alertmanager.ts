/**
 * Prometheus Alertmanager (API v2): `POST {url}/api/v2/alerts` with an array
 * of alerts, the way Prometheus itself feeds Alertmanager. Alertmanager
 * identifies an alert by its label set, groups, silences, inhibits and
 * routes on labels, and forgets an alert at its `endsAt`:
 *
 * - labels: `alertname` (the rule id), `severity`, `subject_kind`,
 *   `subject_id`, `alert_id`, then the alert's own labels with their names
 *   made valid label names (`siteId` stays, `device-type` becomes
 *   `device_type`); the platform's labels win a clash, empty values are left
 *   out (Alertmanager treats them as absent);
 * - annotations: `summary`, `state` (firing, acknowledged or resolved),
 *   `value` when the alert has one;
 * - startsAt: when it last fired; endsAt: while open, now + 4 ×
 *   resendIntervalMs (as Prometheus does), so the alert stays active until
 *   the next re-send is late several times over; resolved: its resolution
 *   time, which tells Alertmanager it is resolved.
 *
 * Acknowledged alerts are still open, so they are sent as firing with
 * `state=acknowledged` (silencing is Alertmanager's own business). Open
 * alerts must be re-sent every resendIntervalMs (`resend`), or Alertmanager
 * resolves them at endsAt. Alertmanager answers 200; 400 for an alert it
 * refuses (not retried).
 */
import type { Alert } from '../protocol/index.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, postJson } from './http.ts';
import type { Clock, HttpNotifierOptions, Notifier } from './types.ts';

export interface AlertmanagerAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

export interface AlertmanagerNotifierOptions extends HttpNotifierOptions {
  /** Alertmanager's base URL, e.g. `http://alertmanager:9093`. */
  url: string;
  /** How often the worker re-sends open alerts (its resendIntervalMs). */
  resendIntervalMs: number;
  clock?: Clock;
  /** A link back to the alert in the platform, when it has one to show (must be an absolute URL). */
  generatorUrl?: (alert: Alert) => string;
}

/** How many resend intervals an open alert stays active without news (Prometheus uses 4 evaluation intervals). */
export const ALERTMANAGER_ENDS_AT_INTERVALS = 4;

export function buildAlertmanagerAlert(
  alert: Alert,
  options: { nowMs: number; resendIntervalMs: number; generatorUrl?: (alert: Alert) => string },
): AlertmanagerAlert {
  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(alert.labels)) {
    if (value !== '') labels[toLabelName(name)] = value;
  }
  Object.assign(labels, {
    alertname: alert.ruleId,
    severity: alert.severity,
    subject_kind: alert.subjectKind,
    subject_id: alert.subjectId,
    alert_id: alert.id,
  });
  const annotations: Record<string, string> = { summary: alert.summary, state: alert.state };
  if (alert.value !== null) annotations.value = String(alert.value);
  const endsAtMs =
    alert.state === 'resolved' ? (alert.resolvedAtMs ?? options.nowMs) : options.nowMs + ALERTMANAGER_ENDS_AT_INTERVALS * options.resendIntervalMs;
  // Alertmanager refuses an alert that ends before it starts.
  const startsAtMs = Math.min(alert.firedAtMs, endsAtMs);
  const out: AlertmanagerAlert = { labels, annotations, startsAt: new Date(startsAtMs).toISOString(), endsAt: new Date(endsAtMs).toISOString() };
  if (options.generatorUrl !== undefined) out.generatorURL = options.generatorUrl(alert);
  return out;
}

/**
 * A valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`, and not the
 * reserved `__` prefix): other characters become `_`, a leading digit gets
 * a `_` before it, leading underscores are cut to one.
 */
export function toLabelName(name: string): string {
  let out = name.replace(/[^a-zA-Z0-9_]/g, '_');
  if (out === '') return '_';
  if (/^[0-9]/.test(out)) out = `_${out}`;
  return out.replace(/^_{2,}/, '_');
}

export function createAlertmanagerNotifier(options: AlertmanagerNotifierOptions): Notifier {
  if (!(options.resendIntervalMs > 0)) throw new Error('resendIntervalMs must be positive');
  const endpoint = `${options.url.replace(/\/+$/, '')}/api/v2/alerts`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const clock = options.clock ?? Date.now;
  const build = (alert: Alert): AlertmanagerAlert =>
    buildAlertmanagerAlert(alert, { nowMs: clock(), resendIntervalMs: options.resendIntervalMs, generatorUrl: options.generatorUrl });
  const post = (alerts: readonly Alert[], signal: AbortSignal) =>
    postJson({ url: endpoint, body: JSON.stringify(alerts.map(build)), timeoutMs, signal, nowMs: clock });
  return {
    name: 'alertmanager',
    deliver(event, signal) {
      return post([event.alert], signal);
    },
    async resend(open, signal) {
      if (open.length === 0) return;
      const outcome = await post(open, signal);
      if (!outcome.ok) throw new Error(`re-sending ${open.length} open alerts failed: ${outcome.detail}`);
    },
  };
}
