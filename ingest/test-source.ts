/**
 * Test support: an IngestSource fed by hand, through the same outlet as the
 * real sources. `push` hands a message to the pipeline and returns a
 * promise of its acknowledgement.
 */
import type { IngestCounters } from './counters.ts';
import { SourceOutlet } from './sources/outlet.ts';
import type { InboundMessage, IngestSource } from './types.ts';

export interface HandFedSource extends IngestSource {
  push(message: Omit<InboundMessage, 'ack' | 'retained'> & { retained?: boolean }, onAck?: () => void): Promise<void>;
}

export function createHandFedSource(counters: IngestCounters): HandFedSource {
  const outlet = new SourceOutlet(counters);
  return {
    messages$: outlet.messages$,
    inflight: () => outlet.inflight(),
    close: () => outlet.close(),
    push(message, onAck) {
      return new Promise<void>((resolve) => {
        outlet.hand({ retained: false, ...message }, () => {
          onAck?.();
          resolve();
        });
      });
    },
  };
}
