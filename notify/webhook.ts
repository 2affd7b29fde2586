/**
 * Generic signed webhook: POSTs `{ eventId, alert, transition }` as JSON.
 *
 * Headers:
 * - `X-VPP-Event-Id`: the transition's stable id; a receiver drops repeats by it;
 * - `X-VPP-Timestamp`: when this request was signed, in unix seconds;
 * - `X-VPP-Signature`: `v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.
 *
 * Receivers check requests with verifyWebhookSignature: the signature binds
 * the body to the timestamp, and a timestamp older than the tolerance is
 * refused, so a captured request cannot be replayed later. Every attempt is
 * signed anew, so a retry hours later still verifies.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AlertEvent } from '../protocol/index.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, postJson } from './http.ts';
import type { Clock, HttpNotifierOptions, Notifier } from './types.ts';

export const WEBHOOK_EVENT_ID_HEADER = 'X-VPP-Event-Id';
export const WEBHOOK_TIMESTAMP_HEADER = 'X-VPP-Timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'X-VPP-Signature';
export const DEFAULT_WEBHOOK_TOLERANCE_MS = 5 * 60_000;

export interface WebhookNotifierOptions extends HttpNotifierOptions {
  url: string;
  /** Shared with the receiver; at least 16 characters. */
  secret: string;
  clock: Clock;
}

/** The body: the event, field for field. */
export function buildWebhookBody(event: AlertEvent): string {
  const body: Pick<AlertEvent, 'eventId' | 'alert' | 'transition'> = { eventId: event.eventId, alert: event.alert, transition: event.transition };
  return JSON.stringify(body);
}

/** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. */
export function signWebhook(secret: string, timestampSeconds: number, body: string | Buffer): string {
  return `v1=${hmacHex(secret, String(timestampSeconds), body)}`;
}

/** The body and headers of one attempt, signed at nowMs. */
export function buildWebhookRequest(event: AlertEvent, secret: string, nowMs: number): { body: string; headers: Record<string, string> } {
  const body = buildWebhookBody(event);
  const timestamp = Math.floor(nowMs / 1000);
  return {
    body,
    headers: {
      'Content-Type': 'application/json',
      [WEBHOOK_EVENT_ID_HEADER]: event.eventId,
      [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
      [WEBHOOK_SIGNATURE_HEADER]: signWebhook(secret, timestamp, body),
    },
  };
}

export function createWebhookNotifier(options: WebhookNotifierOptions): Notifier {
  if (options.secret.length < 16) throw new Error('webhook secret must have at least 16 characters');
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return {
    name: 'webhook',
    deliver(event, signal) {
      const { body, headers } = buildWebhookRequest(event, options.secret, options.clock());
      return postJson({ url: options.url, body, headers, timeoutMs, signal, nowMs: options.clock });
    },
  };
}

export type WebhookVerification = { ok: true } | { ok: false; reason: 'malformed' | 'stale' | 'bad-signature' };

/**
 * For receivers: checks a request's signature against the raw body as
 * received (before any JSON parsing). Refuses a timestamp further than
 * toleranceMs from nowMs either way (replay protection; allow for clock
 * skew), and compares in constant time. `signature` is the header's value;
 * several comma-separated `v1=` entries are accepted, any one matching.
 */
export function verifyWebhookSignature(input: {
  secret: string;
  timestamp: string | number;
  body: string | Buffer;
  signature: string;
  nowMs: number;
  toleranceMs?: number;
}): WebhookVerification {
  const toleranceMs = input.toleranceMs ?? DEFAULT_WEBHOOK_TOLERANCE_MS;
  const timestamp = String(input.timestamp).trim();
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed' };
  if (Math.abs(input.nowMs - Number(timestamp) * 1000) > toleranceMs) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(hmacHex(input.secret, timestamp, input.body), 'hex');
  const candidates = input.signature
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith('v1='))
    .map((part) => part.slice(3));
  if (candidates.length === 0) return { ok: false, reason: 'malformed' };
  let match = false;
  for (const candidate of candidates) {
    if (!/^[0-9a-f]{64}$/i.test(candidate)) continue;
    // Every candidate is compared, so the time taken says nothing about which matched.
    if (timingSafeEqual(Buffer.from(candidate, 'hex'), expected)) match = true;
  }
  return match ? { ok: true } : { ok: false, reason: 'bad-signature' };
}

function hmacHex(secret: string, timestamp: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}
