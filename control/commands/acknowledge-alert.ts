/** An operator takes a firing alert: firing → acknowledged. */
import type { FastifyBaseLogger } from 'fastify';
import type { AlertEvent } from '../../protocol/index.ts';
import type { AlertStore } from '../../store/types.ts';
import { conflict } from '../errors.ts';
import { isoTime } from '../presenters/device.ts';
import { requireAlert } from '../queries/alerts.ts';
import { tellAlertTransition } from './tell-alert-transition.ts';

export interface AcknowledgeAlertDeps {
  alerts: Pick<AlertStore, 'getAlert' | 'acknowledgeAlert'>;
  clock: () => number;
  onAlertTransition: (event: AlertEvent) => void;
}

/**
 * Acknowledges a firing alert and returns the stored transition. Throws 404
 * for an unknown alert and 409 naming the state when it is already
 * acknowledged or resolved. A blank note counts as none.
 */
export function acknowledgeAlert(
  deps: AcknowledgeAlertDeps,
  input: { id: string; actor: string; note: string | undefined },
  log: Pick<FastifyBaseLogger, 'warn'>,
): AlertEvent {
  const alert = requireAlert(deps, input.id);
  // Checked here for a message that says since when and by whom; the store checks again in its transaction.
  if (alert.state === 'acknowledged') {
    const when = alert.acknowledgedAtMs === null ? '' : ` at ${isoTime(alert.acknowledgedAtMs)}`;
    throw conflict(`alert '${alert.id}' is already acknowledged (by ${alert.acknowledgedBy ?? 'unknown'}${when})`);
  }
  if (alert.state === 'resolved') {
    const when = alert.resolvedAtMs === null ? '' : ` at ${isoTime(alert.resolvedAtMs)}`;
    throw conflict(`alert '${alert.id}' is already resolved (by ${alert.resolvedBy ?? 'unknown'}${when})`);
  }
  const note = input.note?.trim() ? input.note.trim() : null;
  const event = deps.alerts.acknowledgeAlert(alert.id, { actor: input.actor, note, atMs: deps.clock() });
  tellAlertTransition(deps, event, log);
  return event;
}
