/**
 * Source: a tap on the embedded broker's publish path (one-process mode).
 * Skips a network hop and an encode/decode, and holds the device's PUBACK
 * until the pipeline has committed the message: the broker calls `done` only
 * when the message is acknowledged. The in-flight bound is the broker's tap
 * window: the broker stops reading a device's socket while too many of its
 * messages (or of all devices') wait for `done` (broker/tap-flow-control.ts).
 *
 * The broker's connection events come in through `onPresence` and flow
 * through the pipeline as messages on their platform topic, in order with
 * the devices' data.
 */
import { Observable } from 'rxjs';
import { encodeJson, presenceTopic, type PresenceEvent } from '../../protocol/index.ts';
import type { IngestCounters } from '../counters.ts';
import type { InboundMessage, IngestSource, InflightReport } from '../types.ts';
import { InflightTracker } from './inflight.ts';

/** What the broker hands over; structurally the broker's TappedPublish. */
export interface TappedMessage {
  deviceId: string;
  topic: string;
  payload: Buffer;
  retain: boolean;
  isWill: boolean;
  receivedAtMs: number;
}

export interface BrokerTapSource extends IngestSource {
  /** Give this to the broker as its tap. */
  readonly tap: { onDevicePublish(message: TappedMessage, done: (err?: Error) => void): void };
  /** Give this to the broker as its presence listener. */
  onPresence(event: PresenceEvent): void;
}

export function createBrokerTapSource(counters: IngestCounters, clock: () => number = Date.now): BrokerTapSource {
  const tracker = new InflightTracker();
  let open = true;
  // Until the pipeline subscribes, messages wait here; the broker's tap
  // window bounds how many device publishes can.
  let waiting: InboundMessage[] | undefined = [];
  let emit: (message: InboundMessage) => void = (message) => waiting?.push(message);
  let finish: (() => void) | undefined;

  function hand(topic: string, payload: Buffer, clientId: string | null, retained: boolean, receivedAtMs: number, settle: (err?: Error) => void): void {
    counters.received++;
    const release = tracker.add(receivedAtMs);
    emit({
      topic,
      payload,
      clientId,
      retained,
      receivedAtMs,
      ack() {
        if (release()) settle();
      },
    });
  }

  const messages$ = new Observable<InboundMessage>((subscriber) => {
    const queued = waiting ?? [];
    waiting = undefined;
    emit = (message) => subscriber.next(message);
    finish = () => subscriber.complete();
    for (const message of queued) subscriber.next(message);
    if (!open) subscriber.complete();
    return () => {
      emit = () => undefined;
    };
  });

  const noop = (): void => undefined;
  return {
    tap: {
      onDevicePublish(message, done) {
        if (!open) {
          // Refused: the device retransmits after reconnecting (a will is routed anyway).
          done(new Error('ingest is not running'));
          return;
        }
        hand(message.topic, message.payload, message.deviceId, false, message.receivedAtMs, done);
      },
    },
    onPresence(event) {
      if (open) hand(presenceTopic(event.deviceId), encodeJson(event), null, false, clock(), noop);
    },
    messages$,
    inflight: (): InflightReport => tracker.report(),
    close() {
      if (!open) return;
      open = false;
      finish?.();
    },
  };
}
