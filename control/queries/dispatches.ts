/** Reads of dispatches: one page of them, or one with its allocation and tracking. */
import type { DispatchState } from '../../protocol/index.ts';
import type { CommandStore, DispatchStore, StoredDispatch } from '../../store/types.ts';
import { badRequest, isStoreError, notFound } from '../errors.ts';
import { presentDispatch, presentDispatchSummary, type DispatchView } from '../presenters/dispatch.ts';
import { DISPATCH_ID_PATTERN } from '../schemas/dispatches.ts';

const DISPATCH_ID = new RegExp(DISPATCH_ID_PATTERN);

/**
 * Commands of one dispatch read for its allocation: the store's largest
 * page. A dispatch sends each battery a handful of commands (start,
 * corrections, the return to local control), so the newest 1 000 hold the
 * newest of every battery of all but the largest dispatches.
 */
const ALLOCATION_COMMANDS = 1000;
/**
 * Samples read for energy and tracking: the largest read the store takes,
 * ten times what it keeps of one dispatch by default, so every sample counts.
 */
const ALL_SAMPLES = 100_000;

export interface DispatchPageParams {
  limit: number;
  state?: DispatchState | undefined;
  before?: string | undefined;
}

/** One page of dispatches, newest first; `next` continues it. */
export function queryDispatches(deps: { dispatches: Pick<DispatchStore, 'listDispatches'> }, params: DispatchPageParams) {
  const { limit, state, before } = params;
  let page: { dispatches: StoredDispatch[]; next: string | null };
  try {
    page = deps.dispatches.listDispatches({
      limit,
      ...(state === undefined ? {} : { state }),
      ...(before === undefined ? {} : { before }),
    });
  } catch (err) {
    // The other values were checked by the schema; what the store can still refuse is a cursor it did not make.
    if (isStoreError(err) && err.code === 'invalid' && before !== undefined) throw badRequest('before: is not the `next` of a previous page');
    throw err;
  }
  return { dispatches: page.dispatches.map(presentDispatchSummary), next: page.next };
}

/**
 * The dispatch with this id, or a 404. An id that is not a UUID cannot name
 * a dispatch, so it is a 404 without asking the store.
 */
export function requireDispatch(deps: { dispatches: Pick<DispatchStore, 'getDispatch'> }, id: string): StoredDispatch {
  const dispatch = DISPATCH_ID.test(id) ? deps.dispatches.getDispatch(id) : undefined;
  if (!dispatch) throw notFound(`dispatch '${id}' does not exist`);
  return dispatch;
}

/** A stored dispatch with its commands and samples, as the API shows it. */
export function viewDispatch(
  deps: { dispatches: Pick<DispatchStore, 'listDispatchSamples'>; commands: Pick<CommandStore, 'listCommands'> },
  dispatch: StoredDispatch,
): DispatchView {
  const { commands } = deps.commands.listCommands({ dispatchId: dispatch.id, limit: ALLOCATION_COMMANDS });
  const samples = deps.dispatches.listDispatchSamples(dispatch.id, { limit: ALL_SAMPLES });
  return presentDispatch(dispatch, commands, samples);
}

export function queryDispatch(
  deps: { dispatches: Pick<DispatchStore, 'getDispatch' | 'listDispatchSamples'>; commands: Pick<CommandStore, 'listCommands'> },
  id: string,
): DispatchView {
  return viewDispatch(deps, requireDispatch(deps, id));
}
