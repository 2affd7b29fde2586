/**
 * MQTT: each told transition is published (QoS 1) as the event's JSON on
 * `vpp/v1/alerts/{ruleId}/{subjectId}` (alertTopic), so dashboards and
 * other services subscribe to alerts like to everything else:
 *
 * - an open alert's transition (fired, reopened, acknowledged) is retained,
 *   so a subscriber arriving later sees every open alert at once;
 * - a resolution is published not retained (live subscribers see it), then
 *   an empty retained payload clears the retained message, so nothing stale
 *   is handed to later subscribers.
 *
 * The publish function is the caller's (its MQTT client, its broker
 * session); it resolves once the broker acknowledged (PUBACK) and rejects
 * on failure, which this adapter reports as a retryable outcome.
 */
import { alertTopic, isOpenAlertState, type AlertEvent } from '../protocol/index.ts';
import { describeError } from './http.ts';
import type { DeliveryOutcome, Notifier } from './types.ts';

export type MqttPublish = (topic: string, payload: Buffer, options: { qos: 1; retain: boolean }) => Promise<void>;

export interface MqttMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
}

/** The messages one event becomes, in publishing order. */
export function buildMqttMessages(event: AlertEvent): MqttMessage[] {
  const topic = alertTopic(event.alert.ruleId, event.alert.subjectId);
  const payload = Buffer.from(JSON.stringify({ eventId: event.eventId, alert: event.alert, transition: event.transition }));
  if (isOpenAlertState(event.alert.state)) return [{ topic, payload, retain: true }];
  return [
    { topic, payload, retain: false },
    { topic, payload: Buffer.alloc(0), retain: true },
  ];
}

export function createMqttNotifier(options: { publish: MqttPublish }): Notifier {
  return {
    name: 'mqtt',
    async deliver(event, signal): Promise<DeliveryOutcome> {
      for (const message of buildMqttMessages(event)) {
        if (signal.aborted) return { ok: false, retryable: true, detail: 'aborted' };
        try {
          await abortable(options.publish(message.topic, message.payload, { qos: 1, retain: message.retain }), signal);
        } catch (error) {
          return { ok: false, retryable: true, detail: signal.aborted ? 'aborted or timed out waiting for PUBACK' : `publish failed: ${describeError(error)}` };
        }
      }
      return { ok: true };
    },
  };
}

/** Settles with the promise, or rejects when the signal aborts first (the publish itself is the client's to finish or drop). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
