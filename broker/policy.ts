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

const DEVICES_PREFIX = `${TOPIC_ROOT}/devices/`;
const SLASH = 0x2f;

/**
 * The channel of `topic` when `deviceId` may publish there, else undefined.
 * Runs on every publish, so it compares in place instead of building the
 * device's topic names.
 */
export function devicePublishChannel(deviceId: string, topic: string): DeviceChannel | undefined {
  const channelStart = DEVICES_PREFIX.length + deviceId.length + 1;
  if (
    topic.length <= channelStart ||
    !topic.startsWith(DEVICES_PREFIX) ||
    !topic.startsWith(deviceId, DEVICES_PREFIX.length) ||
    topic.charCodeAt(channelStart - 1) !== SLASH
  ) {
    return undefined;
  }
  for (const channel of DEVICE_PUBLISH_CHANNELS) {
    if (topic.length === channelStart + channel.length && topic.endsWith(channel)) return channel;
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
