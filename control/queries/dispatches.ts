/** Reads of dispatches: one page of them, or one with its allocation and tracking. */
import type { DispatchState } from '../../protocol/index.ts';
import type { CommandStore, DispatchStore, StoredDispatch } from '../../store/types.ts';
import { notFound, readPage } from '../errors.ts';
import { presentDispatch, presentDispatchSamples, presentDispatchSummary, type DispatchSamplesView, type DispatchView } from '../presenters/dispatch.ts';
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
  const page = readPage(before, () =>
    deps.dispatches.listDispatches({
      limit,
      ...(state === undefined ? {} : { state }),
      ...(before === undefined ? {} : { before }),
    }),
  );
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

/** States in which a dispatch takes no more samples (the control loop samples only active ones). */
const FINISHED: ReadonlySet<DispatchState> = new Set(['completed', 'cancelled', 'failed']);
/** Finished dispatches whose sample summary is kept, per store, least recently read dropped first. */
export const MAX_CACHED_SAMPLE_VIEWS = 256;
const sampleViews = new WeakMap<object, Map<string, { updatedAtMs: number; view: DispatchSamplesView }>>();

/**
 * What the samples of a dispatch say (measured, energy, tracking). The
 * samples of a finished dispatch no longer change, so their summary is
 * kept (keyed by its id and last update) rather than read again, up to
 * 100 000 rows, on every GET.
 */
function samplesOf(deps: { dispatches: Pick<DispatchStore, 'listDispatchSamples'> }, dispatch: StoredDispatch): DispatchSamplesView {
  const read = () => presentDispatchSamples(dispatch, deps.dispatches.listDispatchSamples(dispatch.id, { limit: ALL_SAMPLES }));
  if (!FINISHED.has(dispatch.state)) return read();
  let cache = sampleViews.get(deps.dispatches);
  if (cache === undefined) sampleViews.set(deps.dispatches, (cache = new Map()));
  const cached = cache.get(dispatch.id);
  cache.delete(dispatch.id);
  const view = cached !== undefined && cached.updatedAtMs === dispatch.updatedAtMs ? cached.view : read();
  cache.set(dispatch.id, { updatedAtMs: dispatch.updatedAtMs, view });
  if (cache.size > MAX_CACHED_SAMPLE_VIEWS) cache.delete(cache.keys().next().value!);
  return view;
}

/** A stored dispatch with its commands and samples, as the API shows it. */
export function viewDispatch(
  deps: { dispatches: Pick<DispatchStore, 'listDispatchSamples'>; commands: Pick<CommandStore, 'listCommands'> },
  dispatch: StoredDispatch,
): DispatchView {
  // Commands are read every time: those sending the batteries back after a cancellation still change state.
  const { commands } = deps.commands.listCommands({ dispatchId: dispatch.id, limit: ALLOCATION_COMMANDS });
  return presentDispatch(dispatch, commands, samplesOf(deps, dispatch));
}

export function queryDispatch(
  deps: { dispatches: Pick<DispatchStore, 'getDispatch' | 'listDispatchSamples'>; commands: Pick<CommandStore, 'listCommands'> },
  id: string,
): DispatchView {
  return viewDispatch(deps, requireDispatch(deps, id));
}
