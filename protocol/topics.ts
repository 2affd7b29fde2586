/**
 * Topic names of the firmware-facing MQTT contract (see protocol/README.md).
 * Pure functions, no I/O. Every other part builds and parses topics here.
 */

export const TOPIC_ROOT = 'vpp/v1';

/** Per-device channels: `vpp/v1/devices/{id}/{channel}`. */
export const DEVICE_CHANNELS = ['telemetry', 'status', 'commands', 'acks'] as const;
export type DeviceChannel = (typeof DEVICE_CHANNELS)[number];

/** Channels a device publishes on; `commands` is the one it subscribes to. */
export const DEVICE_PUBLISH_CHANNELS: readonly DeviceChannel[] = ['telemetry', 'status', 'acks'];
export const DEVICE_SUBSCRIBE_CHANNELS: readonly DeviceChannel[] = ['commands'];

/**
 * A device id is also its MQTT username and client id, and one topic level,
 * so it may not contain `/`, `+`, `#` or whitespace.
 */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const deviceIdRegExp = new RegExp(DEVICE_ID_PATTERN);

export function isValidDeviceId(id: string): boolean {
  return deviceIdRegExp.test(id);
}

export function deviceTopic(deviceId: string, channel: DeviceChannel): string {
  return `${TOPIC_ROOT}/devices/${deviceId}/${channel}`;
}

/** Subscription filter matching one channel of every device. */
export function allDevicesFilter(channel: DeviceChannel): string {
  return `${TOPIC_ROOT}/devices/+/${channel}`;
}

export interface DeviceTopic {
  deviceId: string;
  channel: DeviceChannel;
}

const DEVICES_PREFIX = `${TOPIC_ROOT}/devices/`;

/** Parses `vpp/v1/devices/{id}/{channel}`; undefined for any other topic. */
export function parseDeviceTopic(topic: string): DeviceTopic | undefined {
  if (!topic.startsWith(DEVICES_PREFIX)) return undefined;
  const rest = topic.slice(DEVICES_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const deviceId = rest.slice(0, slash);
  const channel = rest.slice(slash + 1);
  if (!(DEVICE_CHANNELS as readonly string[]).includes(channel)) return undefined;
  if (!isValidDeviceId(deviceId)) return undefined;
  return { deviceId, channel: channel as DeviceChannel };
}

/** Live aggregates published (retained) by ingest, read by control and dashboards. */
export type AggregateLevel = 'site' | 'region' | 'fleet';

export function aggregateTopic(level: AggregateLevel, id: string): string {
  return level === 'fleet' ? `${TOPIC_ROOT}/fleet` : `${TOPIC_ROOT}/fleet/${level}s/${id}`;
}

/** Filter matching every aggregate topic. */
export const AGGREGATES_FILTER = `${TOPIC_ROOT}/fleet/#`;

/**
 * Platform-internal requests between services (not for devices). Control
 * publishes a device id here when a device is revoked; the broker then
 * disconnects it.
 */
export const REVOCATIONS_TOPIC = `${TOPIC_ROOT}/platform/revocations`;

export function serviceHealthTopic(service: string): string {
  return `${TOPIC_ROOT}/platform/health/${service}`;
}
export const SERVICE_HEALTH_FILTER = `${TOPIC_ROOT}/platform/health/+`;

/**
 * Connection events of devices, published by the platform's broker (QoS 1,
 * not retained) on `vpp/v1/platform/presence/{id}` when a device's
 * connection opens and when it closes for any reason. Presence in the twin
 * follows them, not the devices' own retained status.
 */
export function presenceTopic(deviceId: string): string {
  return `${TOPIC_ROOT}/platform/presence/${deviceId}`;
}
export const PRESENCE_FILTER = `${TOPIC_ROOT}/platform/presence/+`;
const PRESENCE_PREFIX = `${TOPIC_ROOT}/platform/presence/`;

/** The device id of a presence topic; undefined for any other topic. */
export function parsePresenceTopic(topic: string): string | undefined {
  if (!topic.startsWith(PRESENCE_PREFIX)) return undefined;
  const deviceId = topic.slice(PRESENCE_PREFIX.length);
  return isValidDeviceId(deviceId) ? deviceId : undefined;
}

/** The broker's own heartbeat (retained), carrying when it started: connections older than that are gone. */
export const BROKER_HEALTH_TOPIC = serviceHealthTopic('broker');

/**
 * Alert transitions, published by the platform (QoS 1) on
 * `vpp/v1/alerts/{ruleId}/{subjectId}`: an open alert's latest transition is
 * retained, and a resolution clears the retained message after publishing
 * the resolved transition. `/`, `+`, `#` and `%` in a subject id are
 * percent-encoded, so it stays one topic level.
 */
export function alertTopic(ruleId: string, subjectId: string): string {
  return `${TOPIC_ROOT}/alerts/${encodeTopicLevel(ruleId)}/${encodeTopicLevel(subjectId)}`;
}
export const ALERTS_FILTER = `${TOPIC_ROOT}/alerts/#`;

function encodeTopicLevel(level: string): string {
  return level.replace(/[%/+#]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/**
 * MQTT accounts of platform services; a device id may never take one. Each
 * service has its own secret, connects with a fixed client id (its account
 * name, so nobody else can take over its session) and may publish and
 * subscribe only where its job needs, by exact filter.
 */
export const SERVICE_ACCOUNTS = ['vpp-ingest', 'vpp-control', 'vpp-observer', 'vpp-dispatch'] as const;
export type ServiceAccount = (typeof SERVICE_ACCOUNTS)[number];

export interface ServicePermissions {
  /** The only client id the account may connect with. */
  clientId: string;
  /** Topics or filters it may publish on (a `#`/`+` here matches topics under it). */
  publish: readonly string[];
  /** Filters it may subscribe to, compared exactly. */
  subscribe: readonly string[];
}

export const SERVICE_PERMISSIONS: Readonly<Record<ServiceAccount, ServicePermissions>> = {
  'vpp-ingest': {
    clientId: 'vpp-ingest',
    publish: [AGGREGATES_FILTER, serviceHealthTopic('ingest'), ALERTS_FILTER],
    subscribe: [allDevicesFilter('telemetry'), allDevicesFilter('status'), PRESENCE_FILTER, BROKER_HEALTH_TOPIC],
  },
  'vpp-control': {
    clientId: 'vpp-control',
    publish: [REVOCATIONS_TOPIC],
    subscribe: [AGGREGATES_FILTER, SERVICE_HEALTH_FILTER],
  },
  // Sends commands to devices (never retained) and reads their acks.
  'vpp-dispatch': {
    clientId: 'vpp-dispatch',
    publish: [allDevicesFilter('commands'), serviceHealthTopic('dispatch')],
    subscribe: [allDevicesFilter('acks')],
  },
  // Read-only, for other systems: alert transitions, live aggregates and
  // service heartbeats; it may publish nothing.
  'vpp-observer': {
    clientId: 'vpp-observer',
    publish: [],
    subscribe: [ALERTS_FILTER, AGGREGATES_FILTER, SERVICE_HEALTH_FILTER],
  },
};

export function isServiceAccount(name: string): name is ServiceAccount {
  return (SERVICE_ACCOUNTS as readonly string[]).includes(name);
}
