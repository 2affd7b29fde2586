/**
 * Test support: an IngestSource fed by hand, with the same in-flight
 * accounting as the real sources. `push` hands a message to the pipeline and
 * returns a promise of its acknowledgement.
 */
import { Subject } from 'rxjs';
import type { IngestCounters } from './counters.ts';
import { InflightTracker } from './sources/inflight.ts';
import type { InboundMessage, IngestSource } from './types.ts';

export interface HandFedSource extends IngestSource {
  push(message: Omit<InboundMessage, 'ack' | 'retained'> & { retained?: boolean }, onAck?: () => void): Promise<void>;
}

export function createHandFedSource(counters: IngestCounters): HandFedSource {
  const subject = new Subject<InboundMessage>();
  const tracker = new InflightTracker();
  return {
    messages$: subject.asObservable(),
    inflight: () => tracker.report(),
    close: () => subject.complete(),
    push(message, onAck) {
      counters.received++;
      const release = tracker.add(message.receivedAtMs);
      return new Promise<void>((resolve) => {
        subject.next({
          retained: false,
          ...message,
          ack() {
            if (!release()) return;
            onAck?.();
            resolve();
          },
        });
      });
    },
  };
}
