/**
 * The dispatch form: what the operator typed (kW, minutes, local time) to the
 * body of `POST /api/v1/dispatches` (W, seconds, ISO 8601), with the API's
 * own bounds checked first so a mistake is named next to its field. Pure.
 */
import type { DispatchBody, DispatchState, DispatchTarget } from './api-types.ts';

export type TargetKind = 'fleet' | 'region' | 'sites';

export interface DispatchFormInput {
  targetKind: TargetKind;
  region: string;
  /** Site ids separated by commas, spaces or new lines. */
  siteIds: string;
  /** Positive delivers to the grid (batteries discharge), negative absorbs (they charge). */
  powerKw: string;
  durationMin: string;
  /** `<input type="datetime-local">` value (local time), empty for now. */
  startAt: string;
  allowPartial: boolean;
}

export type DispatchFormField = 'target' | 'power' | 'duration' | 'startAt';
export type DispatchFormErrors = Partial<Record<DispatchFormField, string>>;

/** The API's bounds (control/schemas/dispatches.ts). */
export const MAX_DISPATCH_POWER_W = 1e9;
export const MIN_DISPATCH_MINUTES = 1;
export const MAX_DISPATCH_MINUTES = 1_440;
export const MAX_DISPATCH_SITES = 10_000;
export const MAX_LEAD_MS = 7 * 86_400_000;
export const MAX_START_LAG_MS = 60_000;

export const EMPTY_DISPATCH_FORM: DispatchFormInput = {
  targetKind: 'fleet',
  region: '',
  siteIds: '',
  powerKw: '',
  durationMin: '30',
  startAt: '',
  allowPartial: false,
};

export function parseSiteIds(text: string): string[] {
  return [...new Set(text.split(/[\s,;]+/).filter((s) => s !== ''))];
}

/** Reads a number typed in any common way ("1 500,5" stays invalid; "-2.5" and "2,5" work). */
export function parseDecimal(text: string): number | null {
  const t = text.trim().replace(/\s/g, '');
  if (t === '') return null;
  const normalised = /^[-+]?\d+,\d+$/.test(t) ? t.replace(',', '.') : t;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(normalised)) return null;
  const n = Number(normalised);
  return Number.isFinite(n) ? n : null;
}

export function buildDispatchBody(
  input: DispatchFormInput,
  nowMs: number,
  parseLocal: (value: string) => number = (v) => new Date(v).getTime(),
): { ok: true; body: DispatchBody } | { ok: false; errors: DispatchFormErrors } {
  const errors: DispatchFormErrors = {};

  let target: DispatchTarget | null = null;
  if (input.targetKind === 'fleet') target = { fleet: true };
  else if (input.targetKind === 'region') {
    if (input.region.trim() === '') errors.target = 'Choose a region.';
    else target = { region: input.region.trim() };
  } else {
    const ids = parseSiteIds(input.siteIds);
    if (ids.length === 0) errors.target = 'Enter at least one site id.';
    else if (ids.length > MAX_DISPATCH_SITES) errors.target = `At most ${MAX_DISPATCH_SITES} sites (${ids.length} given).`;
    else target = { siteIds: ids };
  }

  const kw = parseDecimal(input.powerKw);
  let powerW = 0;
  if (kw === null) errors.power = 'Enter the power in kW (negative to absorb).';
  else if (kw === 0) errors.power = 'Power must not be 0: positive delivers to the grid, negative absorbs.';
  else if (Math.abs(kw * 1000) > MAX_DISPATCH_POWER_W) errors.power = 'At most 1,000,000 kW (1 GW) either way.';
  else powerW = Math.round(kw * 1000 * 1000) / 1000;

  const minutes = parseDecimal(input.durationMin);
  let durationSeconds = 0;
  if (minutes === null || !Number.isInteger(minutes)) errors.duration = 'Enter whole minutes.';
  else if (minutes < MIN_DISPATCH_MINUTES || minutes > MAX_DISPATCH_MINUTES) errors.duration = `From ${MIN_DISPATCH_MINUTES} to ${MAX_DISPATCH_MINUTES} minutes (24 h).`;
  else durationSeconds = minutes * 60;

  let startAt: string | undefined;
  if (input.startAt.trim() !== '') {
    const ms = parseLocal(input.startAt.trim());
    if (!Number.isFinite(ms)) errors.startAt = 'Not a date and time.';
    else if (ms < nowMs - MAX_START_LAG_MS) errors.startAt = 'That time has passed; leave it empty to start now.';
    else if (ms > nowMs + MAX_LEAD_MS) errors.startAt = 'At most 7 days ahead.';
    else startAt = new Date(ms).toISOString();
  }

  if (Object.keys(errors).length > 0 || target === null) return { ok: false, errors };
  const body: DispatchBody = { target, powerW, durationSeconds };
  if (startAt !== undefined) body.startAt = startAt;
  if (input.allowPartial) body.allowPartial = true;
  return { ok: true, body };
}

/** "the fleet", "region north", "site-0001", "3 sites". */
export function describeTarget(target: DispatchTarget): string {
  if ('fleet' in target) return 'the fleet';
  if ('region' in target) return `region ${target.region}`;
  return target.siteIds.length === 1 ? (target.siteIds[0] ?? '') : `${target.siteIds.length} sites`;
}

/** Whether a dispatch is over (protocol's FINAL_DISPATCH_STATES; a Record, so a new state fails to compile here). */
const OVER: Readonly<Record<DispatchState, boolean>> = { scheduled: false, active: false, completed: true, cancelled: true, failed: true };
export function isOverState(state: DispatchState): boolean {
  return OVER[state] ?? false;
}
