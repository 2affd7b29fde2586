/**
 * Who may publish and subscribe where. Pure functions over topics; the aedes
 * hooks in authorize.ts apply them to connected clients.
 *
 * - A device publishes only on its own `telemetry`, `status` and `acks`
 *   topics and subscribes only to its own `commands` topic, by exact name.
 * - A service account may publish and subscribe anywhere under `vpp/v1/`.
 */
import { DEVICE_PUBLISH_CHANNELS, TOPIC_ROOT, deviceTopic, type DeviceChannel } from '../protocol/index.ts';

/** Who a connection authenticated as. */
export type Identity = { kind: 'device'; deviceId: string } | { kind: 'service'; account: string };

/** The channel of `topic` when `deviceId` may publish there, else undefined. */
export function devicePublishChannel(deviceId: string, topic: string): DeviceChannel | undefined {
  for (const channel of DEVICE_PUBLISH_CHANNELS) {
    if (topic === deviceTopic(deviceId, channel)) return channel;
  }
  return undefined;
}

export function mayDeviceSubscribe(deviceId: string, filter: string): boolean {
  return filter === deviceTopic(deviceId, 'commands');
}

const SERVICE_PREFIX = `${TOPIC_ROOT}/`;

/** True for a topic or topic filter under `vpp/v1/` (wildcards below that level are fine). */
export function mayServiceUse(topicOrFilter: string): boolean {
  return topicOrFilter.startsWith(SERVICE_PREFIX);
}

export function mayPublish(identity: Identity, topic: string): boolean {
  return identity.kind === 'service'
    ? mayServiceUse(topic)
    : devicePublishChannel(identity.deviceId, topic) !== undefined;
}

export function maySubscribe(identity: Identity, filter: string): boolean {
  return identity.kind === 'service' ? mayServiceUse(filter) : mayDeviceSubscribe(identity.deviceId, filter);
}
