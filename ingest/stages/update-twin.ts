/** updateTwin: applies accepted envelopes to the in-memory twin; passes everything on unchanged. */
import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { Twin } from '../twin.ts';
import type { ValidatedEnvelope } from '../types.ts';

export function updateTwin(twin: Twin): MonoTypeOperatorFunction<ValidatedEnvelope> {
  return tap((envelope) => {
    if (envelope.kind === 'telemetry') twin.applyTelemetry(envelope.deviceId, envelope.samples, envelope.message.receivedAtMs);
    else if (envelope.kind === 'status') twin.applyStatus(envelope.deviceId, envelope.status, envelope.message.receivedAtMs);
  });
}
