/** An operator calls a dispatch off: its batteries go back to local control. */
import { FINAL_DISPATCH_STATES } from '../../protocol/index.ts';
import type { DispatchStore, StoredDispatch } from '../../store/types.ts';
import type { Dispatcher } from '../deps.ts';
import { conflict } from '../errors.ts';
import { isoTime } from '../presenters/device.ts';
import { requireDispatch } from '../queries/dispatches.ts';

/**
 * Cancels a scheduled or active dispatch through the dispatcher, which sends
 * its batteries back to local control. 404 for an unknown dispatch, 409
 * naming the state for one already over.
 */
export function cancelDispatch(deps: { dispatches: Pick<DispatchStore, 'getDispatch'>; dispatcher: Dispatcher }, id: string): StoredDispatch {
  const dispatch = requireDispatch(deps, id);
  // Checked here for a message that says which state and since when; the store checks again in its transaction.
  if (FINAL_DISPATCH_STATES.includes(dispatch.state)) {
    throw conflict(`dispatch '${dispatch.id}' is already ${dispatch.state} (since ${isoTime(dispatch.updatedAtMs)}); only a scheduled or active dispatch can be cancelled`);
  }
  return deps.dispatcher.cancel(dispatch.id);
}
