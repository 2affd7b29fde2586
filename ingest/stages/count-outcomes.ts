/** countOutcomes: counts accepted and rejected envelopes by kind and reason. */
import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { IngestCounters } from '../counters.ts';
import type { ValidatedEnvelope } from '../types.ts';

export function countOutcomes(counters: IngestCounters): MonoTypeOperatorFunction<ValidatedEnvelope> {
  return tap((envelope) => {
    if (envelope.kind === 'rejected') counters.reject(envelope.reason);
    else if (envelope.kind === 'status') counters.statusMessages++;
    else if (envelope.kind === 'presence') counters.presenceEvents++;
    else if (envelope.kind === 'broker-start') counters.brokerHeartbeats++;
    else {
      counters.acceptedMessages++;
      counters.acceptedSamples += envelope.samples.length;
    }
  });
}
