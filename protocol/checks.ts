/**
 * Plausibility checks of telemetry values against the metric catalogue.
 * Pure: the caller passes the time, so policy (how far in the future is too
 * far) stays with the caller.
 */
import { MAX_ABS_METRIC_VALUE, METRICS, type DeviceType } from './metrics.ts';
import type { TelemetrySample } from './messages.ts';

/** Returns a description of the first absurd value, or undefined when all are plausible. */
export function findAbsurdValue(type: DeviceType, metrics: Readonly<Record<string, number>>): string | undefined {
  const catalogue = METRICS[type];
  for (const name in metrics) {
    const value = metrics[name]!;
    if (!Number.isFinite(value) || Math.abs(value) > MAX_ABS_METRIC_VALUE) return `${name}=${value} is not a plausible number`;
    const spec = catalogue[name];
    if (spec && (value < spec.min || value > spec.max)) {
      return `${name}=${value} is outside [${spec.min}, ${spec.max}] ${spec.unit} for a ${type}`;
    }
  }
  return undefined;
}

/** Returns a description when a sample's time is beyond `nowMs + maxFutureMs` or before `nowMs - maxAgeMs`. */
export function findImplausibleTime(
  sample: Pick<TelemetrySample, 'ts'>,
  nowMs: number,
  maxFutureMs: number,
  maxAgeMs: number,
): string | undefined {
  if (sample.ts > nowMs + maxFutureMs) return `ts ${sample.ts} is ${sample.ts - nowMs} ms in the future`;
  if (sample.ts < nowMs - maxAgeMs) return `ts ${sample.ts} is older than ${maxAgeMs} ms`;
  return undefined;
}
