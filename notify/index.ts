/**
 * Notifications: the outbox worker and one adapter per integration behind
 * the Notifier port. The contract suite lives in notifier.contract.ts, apart
 * from this entry point, because it imports vitest.
 */
export type { Clock, DeliveryOutcome, HttpNotifierOptions, Notifier } from './types.ts';
export { DEFAULT_REQUEST_TIMEOUT_MS, MAX_RESPONSE_BYTES, classifyResponse, parseRetryAfter } from './http.ts';
export {
  DEFAULT_WEBHOOK_TOLERANCE_MS,
  WEBHOOK_EVENT_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  buildWebhookBody,
  buildWebhookRequest,
  createWebhookNotifier,
  signWebhook,
  verifyWebhookSignature,
  type WebhookNotifierOptions,
  type WebhookVerification,
} from './webhook.ts';
export { buildSlackMessage, createSlackNotifier, type SlackBlock, type SlackMessage, type SlackNotifierOptions, type SlackText } from './slack.ts';
export {
  PAGERDUTY_EVENTS_URL,
  buildPagerDutyEvent,
  createPagerDutyNotifier,
  pagerDutyDedupKey,
  type PagerDutyAction,
  type PagerDutyEvent,
  type PagerDutyNotifierOptions,
  type PagerDutyPayload,
} from './pagerduty.ts';
export {
  ALERTMANAGER_ENDS_AT_INTERVALS,
  buildAlertmanagerAlert,
  createAlertmanagerNotifier,
  toLabelName,
  type AlertmanagerAlert,
  type AlertmanagerNotifierOptions,
} from './alertmanager.ts';
export { buildMqttMessages, createMqttNotifier, type MqttMessage, type MqttPublish } from './mqtt.ts';
export { INTEGRATIONS, UNROUTED_INTEGRATIONS, routeAlert, routeEvent, routeMatches, type IntegrationName, type NotificationRoute } from './routing.ts';
export { nextAttemptAtMs, type BackoffInput } from './backoff.ts';
export {
  DEFAULT_NOTIFY_SETTINGS,
  flattenNotifyCounters,
  startNotifier,
  type IntegrationCounters,
  type NotifierWorker,
  type NotifierWorkerOptions,
  type NotifyCounters,
} from './worker.ts';
export { registerNotifyMetrics, type NotifyMetricsSource } from './metrics.ts';
