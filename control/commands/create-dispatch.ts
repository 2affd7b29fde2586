/**
 * An operator asks the fleet for power: the request is checked against the
 * registry and the clock, then planned only (dry run) or handed to the
 * dispatcher, which stores it and wakes the control loop.
 */
import type { DispatchTarget } from '../../protocol/index.ts';
import type { Registry, StoredDispatch } from '../../store/types.ts';
import type { DispatchPlan, DispatchRequest, Dispatcher } from '../deps.ts';
import { badRequest, isInfeasibleDispatchError } from '../errors.ts';
import { isoTime } from '../presenters/device.ts';
import { MAX_DISPATCH_LEAD_MS, MAX_DISPATCH_START_LAG_MS } from '../schemas/dispatches.ts';
import { parseTime } from '../time-range.ts';

/** Unknown site ids named in a 400; the rest are counted, so the message stays readable for a long list. */
const MAX_NAMED_UNKNOWN = 10;

/** The body as the schema let it through. */
export interface CreateDispatchInput {
  target: { fleet?: true; region?: string; siteIds?: string[] };
  powerW: number;
  startAt?: string | undefined;
  durationSeconds: number;
  allowPartial?: boolean | undefined;
}

export interface CreateDispatchDeps {
  registry: Pick<Registry, 'listSites'>;
  dispatcher: Dispatcher;
  clock: () => number;
}

/** Exactly one kind of target, each naming sites the registry knows; 400 naming the problem otherwise. */
function checkTarget(deps: Pick<CreateDispatchDeps, 'registry'>, target: CreateDispatchInput['target']): DispatchTarget {
  const kinds = (['fleet', 'region', 'siteIds'] as const).filter((key) => target[key] !== undefined);
  if (kinds.length !== 1) {
    throw badRequest(`target: must have exactly one of fleet, region, siteIds${kinds.length === 0 ? '' : ` (not ${kinds.join(' and ')})`}`);
  }
  if (target.fleet !== undefined) return { fleet: true };
  const sites = deps.registry.listSites();
  if (target.region !== undefined) {
    const region = target.region;
    if (!sites.some((site) => site.region === region)) throw badRequest(`target.region: no site is in region '${region}'`);
    return { region };
  }
  const siteIds = target.siteIds ?? [];
  const known = new Set(sites.map((site) => site.id));
  const unknown = siteIds.filter((id) => !known.has(id));
  if (unknown.length > 0) {
    const named = unknown.slice(0, MAX_NAMED_UNKNOWN).map((id) => `'${id}'`).join(', ');
    const more = unknown.length > MAX_NAMED_UNKNOWN ? ` and ${unknown.length - MAX_NAMED_UNKNOWN} more` : '';
    throw badRequest(`target.siteIds: ${unknown.length === 1 ? 'site' : 'sites'} ${named}${more} ${unknown.length === 1 ? 'does' : 'do'} not exist`);
  }
  return { siteIds: [...siteIds] };
}

/** The checked request: 400 naming the field for what the schema cannot say. */
export function checkDispatchRequest(deps: Pick<CreateDispatchDeps, 'registry' | 'clock'>, input: CreateDispatchInput): DispatchRequest {
  if (input.powerW === 0) throw badRequest('powerW: must not be 0 (positive delivers, negative absorbs)');
  const nowMs = deps.clock();
  let startAtMs = nowMs;
  if (input.startAt !== undefined) {
    startAtMs = parseTime('startAt', input.startAt);
    if (startAtMs > nowMs + MAX_DISPATCH_LEAD_MS) {
      throw badRequest(`startAt: ${isoTime(startAtMs)} is more than 7 days ahead (latest ${isoTime(nowMs + MAX_DISPATCH_LEAD_MS)})`);
    }
    if (startAtMs < nowMs - MAX_DISPATCH_START_LAG_MS) {
      throw badRequest(`startAt: ${isoTime(startAtMs)} is in the past (earliest ${isoTime(nowMs - MAX_DISPATCH_START_LAG_MS)})`);
    }
  }
  return {
    target: checkTarget(deps, input.target),
    powerW: input.powerW,
    startAtMs,
    durationMs: input.durationSeconds * 1000,
    allowPartial: input.allowPartial ?? false,
  };
}

export type CreateDispatchResult =
  | { kind: 'planned'; plan: DispatchPlan }
  | { kind: 'created'; dispatch: StoredDispatch }
  | { kind: 'infeasible'; plan: DispatchPlan };

/**
 * Plans (dry run) or creates the dispatch. An infeasible target without
 * allowPartial is a result rather than an error, because its answer carries
 * the plan, which the `{code, message}` error shape has no room for.
 */
export function createDispatch(deps: CreateDispatchDeps, input: CreateDispatchInput, options: { dryRun: boolean }): CreateDispatchResult {
  const request = checkDispatchRequest(deps, input);
  if (options.dryRun) return { kind: 'planned', plan: deps.dispatcher.plan(request) };
  try {
    return { kind: 'created', dispatch: deps.dispatcher.create(request) };
  } catch (err) {
    if (isInfeasibleDispatchError(err)) return { kind: 'infeasible', plan: err.plan };
    throw err;
  }
}
