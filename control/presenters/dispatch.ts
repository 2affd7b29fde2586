/**
 * Dispatches as the API shows them: what was asked, what each battery is
 * asked and told, and how well the fleet followed, from the control loop's
 * samples.
 */
import type { Static } from '@sinclair/typebox';
import type { DispatchPlanRecord, DispatchSample, StoredCommand, StoredDispatch } from '../../store/types.ts';
import type { DispatchPlan } from '../deps.ts';
import {
  MAX_MEASURED_SAMPLES,
  type AllocationSchema,
  type DispatchPlanSchema,
  type DispatchSchema,
  type DispatchSummarySchema,
  type PlannedDispatchSchema,
} from '../schemas/dispatches.ts';
import { isoTime } from './device.ts';

export type DispatchView = Static<typeof DispatchSchema>;
export type DispatchSummaryView = Static<typeof DispatchSummarySchema>;
export type DispatchPlanView = Static<typeof DispatchPlanSchema>;
export type PlannedDispatchView = Static<typeof PlannedDispatchSchema>;
export type AllocationView = Static<typeof AllocationSchema>;

const MS_PER_HOUR = 3_600_000;
/** Share of its target a sample must reach before tracking error counts: the ramp up is not an error. */
export const TRACKING_THRESHOLD = 0.95;

/** The record's fields only: a plan from elsewhere may carry more, which the API does not promise. */
export function presentPlan(plan: DispatchPlanRecord): DispatchPlanView {
  return {
    feasible: plan.feasible,
    availableW: plan.availableW,
    shortfallW: plan.shortfallW,
    marginW: plan.marginW,
    marginWh: plan.marginWh,
    devicesUsed: plan.devicesUsed,
    explanation: plan.explanation,
  };
}

export function presentPlannedDispatch(plan: DispatchPlan): PlannedDispatchView {
  return { ...presentPlan(plan), setpoints: { ...plan.setpoints } };
}

export function presentDispatchSummary(dispatch: StoredDispatch): DispatchSummaryView {
  return {
    id: dispatch.id,
    target: dispatch.target,
    powerW: dispatch.powerW,
    startAt: isoTime(dispatch.startAtMs),
    endAt: isoTime(dispatch.startAtMs + dispatch.durationMs),
    durationSeconds: dispatch.durationMs / 1000,
    state: dispatch.state,
    allowPartial: dispatch.allowPartial,
    createdAt: isoTime(dispatch.createdAtMs),
    updatedAt: isoTime(dispatch.updatedAtMs),
    reason: dispatch.reason,
    plan: presentPlan(dispatch.plan),
  };
}

/**
 * Each battery the dispatch asks something now (its setpoints) or has sent
 * a command (after a cancellation the setpoints may be gone while the
 * commands sending the batteries back remain), with the newest of those
 * commands. `commands` is newest first, as the store lists them.
 */
export function allocationOf(setpoints: Record<string, number>, commands: readonly StoredCommand[]): AllocationView[] {
  const newest = new Map<string, StoredCommand>();
  for (const command of commands) {
    if (!newest.has(command.deviceId)) newest.set(command.deviceId, command);
  }
  const deviceIds = [...new Set([...Object.keys(setpoints), ...newest.keys()])].sort();
  return deviceIds.map((deviceId) => {
    const command = newest.get(deviceId);
    return {
      deviceId,
      setpointW: Object.hasOwn(setpoints, deviceId) ? (setpoints[deviceId] ?? null) : null,
      command: command ? { id: command.id, state: command.state, reason: command.reason } : null,
    };
  });
}

/**
 * Energy over the samples (oldest first), by trapezoids between neighbours;
 * measured power counts positive in the direction of the target, so a fleet
 * pushing the wrong way delivers negative energy.
 */
export function energyOf(powerW: number, durationMs: number, samples: readonly DispatchSample[]): DispatchView['energy'] {
  const direction = Math.sign(powerW);
  let deliveredWh = 0;
  for (let i = 1; i < samples.length; i += 1) {
    const [a, b] = [samples[i - 1]!, samples[i]!];
    deliveredWh += (((a.measuredW + b.measuredW) / 2) * (b.atMs - a.atMs)) / MS_PER_HOUR;
  }
  deliveredWh *= direction;
  const requestedWh = (Math.abs(powerW) * durationMs) / MS_PER_HOUR;
  return { requestedWh, deliveredWh, shareDelivered: requestedWh > 0 ? deliveredWh / requestedWh : 0 };
}

/** Whether a sample's measured power reached 95 % of its target, in the target's direction. */
function reachedTarget(sample: DispatchSample): boolean {
  if (sample.targetW === 0) return false;
  return Math.sign(sample.targetW) * sample.measuredW >= TRACKING_THRESHOLD * Math.abs(sample.targetW);
}

/**
 * How closely the fleet follows: the latest error, and the mean relative
 * error from the first sample that reached 95 % of its target (before that
 * the batteries are still ramping, which is not a tracking error). Samples
 * with a zero target have no relative error and are left out of the mean.
 */
export function trackingOf(samples: readonly DispatchSample[]): DispatchView['tracking'] {
  const latest = samples.at(-1);
  const first = samples.findIndex(reachedTarget);
  let meanAbsErrorPct: number | null = null;
  if (first >= 0) {
    let sum = 0;
    let count = 0;
    for (const sample of samples.slice(first)) {
      if (sample.targetW === 0) continue;
      sum += (Math.abs(sample.targetW - sample.measuredW) / Math.abs(sample.targetW)) * 100;
      count += 1;
    }
    meanAbsErrorPct = count === 0 ? null : sum / count;
  }
  return {
    latestErrorW: latest ? latest.targetW - latest.measuredW : null,
    meanAbsErrorPct,
    confidence: latest ? latest.confidence : null,
  };
}

export type DispatchSamplesView = Pick<DispatchView, 'measured' | 'energy' | 'tracking'>;

/** What the samples (oldest first, all of them: energy and tracking use every one) say of the dispatch. */
export function presentDispatchSamples(dispatch: StoredDispatch, samples: readonly DispatchSample[]): DispatchSamplesView {
  return {
    measured: samples.slice(-MAX_MEASURED_SAMPLES).map((s) => ({
      at: isoTime(s.atMs),
      targetW: s.targetW,
      measuredW: s.measuredW,
      confidence: s.confidence,
    })),
    energy: energyOf(dispatch.powerW, dispatch.durationMs, samples),
    tracking: trackingOf(samples),
  };
}

/** The whole dispatch; `commands` newest first, `samples` what presentDispatchSamples made of its samples. */
export function presentDispatch(dispatch: StoredDispatch, commands: readonly StoredCommand[], samples: DispatchSamplesView): DispatchView {
  return { ...presentDispatchSummary(dispatch), allocation: allocationOf(dispatch.setpoints, commands), ...samples };
}
