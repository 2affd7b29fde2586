/** An operator resolves an open alert with a reason: firing or acknowledged → resolved. */
import type { FastifyBaseLogger } from 'fastify';
import type { AlertEvent } from '../../protocol/index.ts';
import type { AlertStore } from '../../store/types.ts';
import { badRequest, conflict } from '../errors.ts';
import { isoTime } from '../presenters/device.ts';
import { requireAlert } from '../queries/alerts.ts';
import { tellAlertTransition } from './tell-alert-transition.ts';

export interface ResolveAlertDeps {
  alerts: Pick<AlertStore, 'getAlert' | 'resolveAlert'>;
  clock: () => number;
  onAlertTransition: (event: AlertEvent) => void;
}

/**
 * Resolves an open alert and returns the stored transition. Throws 400 for
 * a blank reason, 404 for an unknown alert and 409 when it is already
 * resolved. The rule keeps its state: the condition must clear and hold
 * again before it raises an alert again.
 */
export function resolveAlert(
  deps: ResolveAlertDeps,
  input: { id: string; actor: string; reason: string },
  log: Pick<FastifyBaseLogger, 'warn'>,
): AlertEvent {
  const reason = input.reason.trim();
  if (reason === '') throw badRequest('reason: must not be blank');
  const alert = requireAlert(deps, input.id);
  // Checked here for a message that says since when and by whom; the store checks again in its transaction.
  if (alert.state === 'resolved') {
    const when = alert.resolvedAtMs === null ? '' : ` at ${isoTime(alert.resolvedAtMs)}`;
    throw conflict(`alert '${alert.id}' is already resolved (by ${alert.resolvedBy ?? 'unknown'}${when})`);
  }
  const event = deps.alerts.resolveAlert(alert.id, { actor: input.actor, reason, atMs: deps.clock() });
  tellAlertTransition(deps, event, log);
  return event;
}
