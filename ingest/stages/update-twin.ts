/** updateTwin: applies accepted envelopes (data and presence) to the in-memory twin; passes everything on unchanged. */
import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { Twin } from '../twin.ts';
import type { ValidatedEnvelope } from '../types.ts';

export function updateTwin(twin: Twin): MonoTypeOperatorFunction<ValidatedEnvelope> {
  return tap((envelope) => {
    switch (envelope.kind) {
      case 'telemetry':
        twin.applyTelemetry(envelope.deviceId, envelope.samples, envelope.message.receivedAtMs);
        break;
      case 'status':
        twin.applyStatus(envelope.deviceId, envelope.status, envelope.message.receivedAtMs, envelope.message.retained);
        break;
      case 'presence':
        twin.applyPresence(envelope.event);
        break;
      case 'broker-start':
        twin.applyBrokerStart(envelope.startedAtMs);
        break;
      case 'rejected':
        break;
    }
  });
}
