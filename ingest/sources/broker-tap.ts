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
import { encodeJson, presenceTopic, type PresenceEvent } from '../../protocol/index.ts';
import type { IngestCounters } from '../counters.ts';
import type { IngestSource } from '../types.ts';
import { SourceOutlet } from './outlet.ts';

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
  // Until the pipeline subscribes, messages wait in the outlet; the broker's
  // tap window bounds how many device publishes can.
  const outlet = new SourceOutlet(counters);
  const noop = (): void => undefined;
  return {
    tap: {
      onDevicePublish(message, done) {
        if (!outlet.open) {
          // Refused: the device retransmits after reconnecting (a will is routed anyway).
          done(new Error('ingest is not running'));
          return;
        }
        const { topic, payload, deviceId, receivedAtMs } = message;
        outlet.hand({ topic, payload, clientId: deviceId, retained: false, receivedAtMs }, done);
      },
    },
    onPresence(event) {
      if (outlet.open) outlet.hand({ topic: presenceTopic(event.deviceId), payload: encodeJson(event), clientId: null, retained: false, receivedAtMs: clock() }, noop);
    },
    messages$: outlet.messages$,
    inflight: () => outlet.inflight(),
    close: () => outlet.close(),
  };
}
