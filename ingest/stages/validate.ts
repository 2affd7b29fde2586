/**
 * validate: checks a decoded envelope against the registry and against
 * plausibility (metric ranges from the catalogue, timestamps not far in the
 * future nor too old). A message with one bad sample is rejected whole, so a
 * device's buffered flush is stored all or nothing.
 */
import { map, type OperatorFunction } from 'rxjs';
import { findAbsurdValue, findImplausibleTime } from '../../protocol/index.ts';
import type { DecodedEnvelope, DeviceRef, StatusEnvelope, TelemetryEnvelope, ValidatedEnvelope } from '../types.ts';

export interface ValidateOptions {
  /** Looks up an active (not revoked) device; undefined when unknown. */
  findDevice(deviceId: string): DeviceRef | undefined;
  clock: () => number;
  /** Samples stamped further ahead than this are rejected (device clocks drift, but not by minutes). */
  maxFutureMs: number;
  /** Samples older than this are rejected (a device's offline buffer has a bound too). */
  maxAgeMs: number;
  /** True when the samples would take the device past its cap on distinct metric names (the twin knows). */
  wouldExceedMetrics(deviceId: string, samples: TelemetryEnvelope['samples']): boolean;
  /** The cap, for the rejection's detail. */
  maxMetricsPerDevice: number;
}

export function validateEnvelope(envelope: DecodedEnvelope, options: ValidateOptions): ValidatedEnvelope {
  if (envelope.kind === 'rejected' || envelope.kind === 'presence' || envelope.kind === 'broker-start') return envelope;
  const device = options.findDevice(envelope.deviceId);
  if (!device) {
    return { kind: 'rejected', message: envelope.message, reason: 'unknown-device', detail: `device ${envelope.deviceId} is not registered or was revoked` };
  }
  if (envelope.kind === 'status') return withDevice(envelope, device);
  const nowMs = options.clock();
  for (const sample of envelope.samples) {
    const absurd = findAbsurdValue(device.type, sample.metrics);
    if (absurd) return { kind: 'rejected', message: envelope.message, reason: 'absurd-value', detail: absurd };
    const badTime = findImplausibleTime(sample, nowMs, options.maxFutureMs, options.maxAgeMs);
    if (badTime) {
      const reason = sample.ts > nowMs ? 'future-timestamp' : 'stale-timestamp';
      return { kind: 'rejected', message: envelope.message, reason, detail: badTime };
    }
  }
  if (options.wouldExceedMetrics(envelope.deviceId, envelope.samples)) {
    return {
      kind: 'rejected',
      message: envelope.message,
      reason: 'too-many-metrics',
      detail: `device ${envelope.deviceId} would have more than ${options.maxMetricsPerDevice} distinct metric names`,
    };
  }
  return withDevice(envelope, device);
}

/**
 * Completes the envelope in place: it is this message's own, and copying it
 * would add an object per message on the hot path.
 */
function withDevice<E extends TelemetryEnvelope | StatusEnvelope>(envelope: E, device: DeviceRef): E & { device: DeviceRef } {
  const accepted = envelope as E & { device: DeviceRef };
  accepted.device = device;
  return accepted;
}

export function validate(options: ValidateOptions): OperatorFunction<DecodedEnvelope, ValidatedEnvelope> {
  return map((envelope) => validateEnvelope(envelope, options));
}
