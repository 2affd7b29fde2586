import type { FastifyBaseLogger } from 'fastify';
import type { AlertEvent } from '../../protocol/index.ts';

/**
 * Tells the process that an operator's transition was stored, so its
 * notifier delivers it now instead of at its next poll. The transition is
 * already stored and the notifier finds it later anyway, so a failure here
 * is logged and does not fail the request.
 */
export function tellAlertTransition(
  deps: { onAlertTransition: (event: AlertEvent) => void },
  event: AlertEvent,
  log: Pick<FastifyBaseLogger, 'warn'>,
): void {
  try {
    deps.onAlertTransition(event);
  } catch (err) {
    log.warn({ err, alertId: event.alert.id, eventId: event.eventId }, 'alert transition stored, but the notifier could not be woken');
  }
}
