/**
 * Source: a tap on the embedded broker's publish path (one-process mode).
 * Skips a network hop and an encode/decode, and holds the device's PUBACK
 * until the pipeline has committed the message: the broker calls `done` only
 * when the message is acknowledged. Backpressure: the broker stops reading a
 * device's socket while too many of its messages (or of all devices') wait
 * for `done` (broker/tap-flow-control.ts).
 */
import { Observable, Subject } from 'rxjs';
import type { IngestCounters } from '../counters.ts';
import type { InboundMessage } from '../types.ts';

/** What the broker hands over; structurally the broker's TappedPublish. */
export interface TappedMessage {
  deviceId: string;
  topic: string;
  payload: Buffer;
  receivedAtMs: number;
}

export interface BrokerTapSource {
  /** Give this to the broker as its tap. */
  readonly tap: { onDevicePublish(message: TappedMessage, done: (err?: Error) => void): void };
  readonly messages$: Observable<InboundMessage>;
  /** Stops taking messages (later publishes are refused, so devices retransmit them) and completes messages$. */
  close(): void;
}

export function createBrokerTapSource(counters: IngestCounters): BrokerTapSource {
  const subject = new Subject<InboundMessage>();
  let open = true;
  return {
    tap: {
      onDevicePublish(message, done) {
        if (!open || subject.observers.length === 0) {
          done(new Error('ingest is not running'));
          return;
        }
        counters.received++;
        counters.inflight++;
        let acked = false;
        subject.next({
          topic: message.topic,
          payload: message.payload,
          clientId: message.deviceId,
          receivedAtMs: message.receivedAtMs,
          ack() {
            if (acked) return;
            acked = true;
            counters.inflight--;
            done();
          },
        });
      },
    },
    messages$: subject.asObservable(),
    close() {
      if (!open) return;
      open = false;
      subject.complete();
    },
  };
}
