/**
 * The control API's two MQTT duties in production: feeding the live view
 * from the retained aggregates and heartbeats that ingest publishes, and
 * asking the broker to disconnect revoked devices. The caller owns the
 * client (connected as the `vpp-control` service account) and its lifecycle.
 */
import type { MqttClient } from 'mqtt';
import { AGGREGATES_FILTER, REVOCATIONS_TOPIC, SERVICE_HEALTH_FILTER, encodeJson } from '../protocol/index.ts';
import type { Revocations } from './deps.ts';
import type { FeedableLiveView } from './live-view.ts';

/** Publishes `{"deviceId": "…"}` on REVOCATIONS_TOPIC at QoS 1; resolves when the broker has acknowledged it. */
export function createMqttRevocations(client: MqttClient): Revocations {
  return {
    async revokeDevice(deviceId) {
      await client.publishAsync(REVOCATIONS_TOPIC, encodeJson({ deviceId }), { qos: 1 });
    },
  };
}

/**
 * Subscribes to live aggregates and service heartbeats and passes every
 * message to the live view. Resolves once subscribed (the broker then sends
 * the retained messages); the returned function unsubscribes.
 */
export async function feedLiveView(client: MqttClient, live: FeedableLiveView): Promise<() => Promise<void>> {
  const filters = [AGGREGATES_FILTER, SERVICE_HEALTH_FILTER];
  const onMessage = (topic: string, payload: Buffer): void => live.apply(topic, payload);
  client.on('message', onMessage);
  try {
    await client.subscribeAsync(filters, { qos: 0 });
  } catch (err) {
    client.off('message', onMessage);
    throw err;
  }
  return async () => {
    client.off('message', onMessage);
    await client.unsubscribeAsync(filters);
  };
}
