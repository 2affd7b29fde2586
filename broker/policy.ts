/**
 * Who may publish and subscribe where. Pure functions over topics; the aedes
 * hooks in authorize.ts and authenticate.ts apply them to connections.
 *
 * - A device publishes only on its own `telemetry`, `status` and `acks`
 *   topics and subscribes only to its own `commands` topic, by exact name.
 *   It may retain only on its `status` topic (the one retained message per
 *   device the platform keeps); telemetry and acks are a stream, and a
 *   retained one would be replayed to every new subscriber as if new.
 * - A service account publishes only on topics that match one of its
 *   `SERVICE_PERMISSIONS[account].publish` entries (MQTT filter matching, so
 *   `vpp/v1/fleet/#` covers every aggregate) and never on a device's topic,
 *   whatever its entries say: nothing can speak for a device but the device.
 *   It subscribes only to filters equal to one of its `subscribe` entries,
 *   character for character; a narrower or a wider filter is refused.
 */
import {
  DEVICE_PUBLISH_CHANNELS,
  SERVICE_ACCOUNTS,
  SERVICE_PERMISSIONS,
  TOPIC_ROOT,
  deviceTopic,
  parseDeviceTopic,
  type DeviceChannel,
  type ServiceAccount,
} from '../protocol/index.ts';
import { matchesFilter } from './topic-filter.ts';

/** Who a connection authenticated as. */
export type Identity = { kind: 'device'; deviceId: string } | { kind: 'service'; account: ServiceAccount };

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

/** A device may retain only its status. */
export function mayDeviceRetain(channel: DeviceChannel): boolean {
  return channel === 'status';
}

export function mayDeviceSubscribe(deviceId: string, filter: string): boolean {
  return filter === deviceTopic(deviceId, 'commands');
}

/** Each account's publish entries, split into levels once. */
const SERVICE_PUBLISH_FILTERS = new Map<ServiceAccount, ReadonlyArray<readonly string[]>>(
  SERVICE_ACCOUNTS.map((account) => [account, SERVICE_PERMISSIONS[account].publish.map((entry) => entry.split('/'))]),
);

/**
 * On device topics a service may publish only commands (the one channel
 * devices subscribe to), and only with a permission naming them: a service
 * can never speak as a device (telemetry, status, acks).
 */
export function mayServicePublish(account: ServiceAccount, topic: string): boolean {
  if (topic.startsWith(DEVICES_PREFIX) && parseDeviceTopic(topic)?.channel !== 'commands') return false;
  return (SERVICE_PUBLISH_FILTERS.get(account) ?? []).some((levels) => matchesFilter(levels, topic));
}

export function mayServiceSubscribe(account: ServiceAccount, filter: string): boolean {
  return SERVICE_PERMISSIONS[account].subscribe.includes(filter);
}

/** The account that connects with `clientId`, if any (each has one fixed client id). */
export function serviceAccountOfClientId(clientId: string): ServiceAccount | undefined {
  return SERVICE_ACCOUNTS.find((account) => SERVICE_PERMISSIONS[account].clientId === clientId);
}

export function mayPublish(identity: Identity, topic: string): boolean {
  return identity.kind === 'service'
    ? mayServicePublish(identity.account, topic)
    : devicePublishChannel(identity.deviceId, topic) !== undefined;
}

/** `mayPublish`, and for a retained message also the device retain rule. */
export function mayPublishRetained(identity: Identity, topic: string, retain: boolean): boolean {
  // A retained command would be carried out again by every device that subscribes later.
  if (identity.kind === 'service') return mayServicePublish(identity.account, topic) && !(retain && topic.startsWith(DEVICES_PREFIX));
  const channel = devicePublishChannel(identity.deviceId, topic);
  return channel !== undefined && (!retain || mayDeviceRetain(channel));
}

export function maySubscribe(identity: Identity, filter: string): boolean {
  return identity.kind === 'service'
    ? mayServiceSubscribe(identity.account, filter)
    : mayDeviceSubscribe(identity.deviceId, filter);
}
