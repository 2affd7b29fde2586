/**
 * The notification port: one Notifier per integration (webhook, Slack,
 * PagerDuty, Alertmanager, MQTT), all driven by the outbox worker
 * (worker.ts) and all held to one contract suite (notifier.contract.ts).
 *
 * Lifecycle and contract of a Notifier:
 *
 * - It is created from its configuration and holds no connection of its
 *   own that needs closing (HTTP adapters use the global fetch; the MQTT
 *   adapter is handed a `publish` function whose client the caller owns).
 * - `deliver(event, signal)` tells the integration about one transition. It
 *   resolves with `{ ok: true }` once the receiver accepted it, and never
 *   rejects for a receiver's failure: connection refused, a reset, a
 *   timeout, a 5xx, 408 and 429 resolve as retryable outcomes (with
 *   `retryAfterMs` when the receiver said when to come back); a request the
 *   receiver refuses for what it is (other 4xx, a redirect, which is not
 *   followed) resolves as a non-retryable outcome. An abort of `signal`
 *   (the worker stopping, or its own deadline) resolves as retryable.
 * - The worker calls `deliver` for one alert and one integration at a time,
 *   in transition order, and may call it again with the same event after a
 *   failure or a restart: receivers drop repeats by `event.eventId` (or the
 *   integration's own dedup key built from it).
 * - `resend(open, signal)`, for integrations that forget firing alerts
 *   unless they are re-sent (Alertmanager), is called every resend interval
 *   with the open alerts routed to it. It rejects when the receiver did not
 *   take them; the worker logs that and tries again at the next interval.
 */
import type { Alert, AlertEvent } from '../protocol/index.ts';

export type DeliveryOutcome =
  | { ok: true }
  | {
      ok: false;
      /** True when the same request may succeed later (the receiver is down, busy or rate-limits). */
      retryable: boolean;
      /** The receiver's Retry-After, in milliseconds from when it answered. */
      retryAfterMs?: number;
      /** Short, human-readable: the status and the first bytes of the receiver's answer, or the network error. */
      detail: string;
    };

export interface Notifier {
  /** The integration's name, as deliveries and routes name it (`webhook`, `slack`, `pagerduty`, `alertmanager`, `mqtt`). */
  readonly name: string;
  deliver(event: AlertEvent, signal: AbortSignal): Promise<DeliveryOutcome>;
  resend?(open: readonly Alert[], signal: AbortSignal): Promise<void>;
}

/** Options every HTTP adapter takes. */
export interface HttpNotifierOptions {
  /** Per request, connecting and reading the answer included (DEFAULT_REQUEST_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** The platform clock: milliseconds since the epoch. */
export type Clock = () => number;
