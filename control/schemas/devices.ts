import { Type } from '@sinclair/typebox';
import { DEVICE_ID_PATTERN, DEVICE_TYPES, METRIC_NAME_PATTERN } from '../../protocol/index.ts';
import { PRESENCES } from '../../store/types.ts';
import { DeviceControlSchema } from './commands.ts';
import { IsoTimeSchema, Nullable, StringEnum } from './common.ts';

export const DeviceTypeSchema = StringEnum(DEVICE_TYPES, { description: 'battery, solar or meter' });

/** Site and region ids are also one MQTT topic level (aggregate topics), so they follow the device id rules. */
export const EntityIdSchema = Type.String({ pattern: DEVICE_ID_PATTERN, description: `matches ${DEVICE_ID_PATTERN}` });

export const MAX_DEVICE_PAGE = 5_000;

export const DeviceListQuerySchema = Type.Object({
  siteId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  type: Type.Optional(DeviceTypeSchema),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_DEVICE_PAGE, default: 1_000, description: 'most devices in one page' })),
  after: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'list devices whose id sorts after this one (the previous page\'s nextAfter)' })),
});

export const DeviceSummarySchema = Type.Object(
  {
    id: Type.String(),
    type: DeviceTypeSchema,
    siteId: Type.String(),
    createdAt: IsoTimeSchema,
    revoked: Type.Boolean(),
    revokedAt: Nullable(IsoTimeSchema),
    online: Type.Boolean({ description: 'true while the device is connected (presence online or stale)' }),
    presence: StringEnum(PRESENCES, {
      description: 'online: connected and heard from recently; stale: connected but silent for too long; offline: not connected or never seen',
    }),
    presenceSince: Nullable({ ...IsoTimeSchema, description: 'since when `presence` has held; null when never known' }),
    lastSeen: Nullable(IsoTimeSchema),
    control: DeviceControlSchema,
  },
  { title: 'DeviceSummary' },
);

export const DeviceListSchema = Type.Object({
  items: Type.Array(DeviceSummarySchema),
  nextAfter: Nullable(Type.String({ description: 'pass as `after` for the next page; null on the last page' })),
});

export const MetricValuesSchema = Type.Record(Type.String({ pattern: METRIC_NAME_PATTERN }), Type.Number(), {
  description: 'latest value of every metric the device ever reported',
});

/** A device and its digital twin (latest known state). */
export const DeviceTwinSchema = Type.Object(
  {
    ...DeviceSummarySchema.properties,
    lastSeenMs: Nullable(Type.Integer({ description: 'when the platform last heard from the device, ms since the epoch' })),
    lastTs: Nullable(Type.Integer({ description: 'device time of the newest sample, ms since the epoch' })),
    lastSeq: Nullable(Type.Integer()),
    metrics: MetricValuesSchema,
    status: Nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'the latest status message, as sent' })),
  },
  { title: 'DeviceTwin' },
);

export const NewSiteSchema = Type.Object(
  {
    region: EntityIdSchema,
    name: Type.String({ minLength: 1, maxLength: 200 }),
  },
  { additionalProperties: false },
);

export const ProvisionDeviceBodySchema = Type.Object(
  {
    type: DeviceTypeSchema,
    siteId: EntityIdSchema,
    id: Type.Optional(
      Type.String({
        pattern: DEVICE_ID_PATTERN,
        description: 'device id, also its MQTT username and client id; generated as `{type}-{random}` when absent',
      }),
    ),
    site: Type.Optional(
      Type.Object(NewSiteSchema.properties, {
        additionalProperties: false,
        description: 'creates the site when it does not exist yet; must match it when it does',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ProvisionedDeviceSchema = Type.Object(
  {
    id: Type.String(),
    type: DeviceTypeSchema,
    siteId: Type.String(),
    createdAt: IsoTimeSchema,
    secret: Type.String({ description: 'the device secret; shown only in this response' }),
    mqtt: Type.Object({
      username: Type.String(),
      password: Type.String(),
      clientId: Type.String(),
      topics: Type.Object({
        telemetry: Type.String(),
        status: Type.String(),
        commands: Type.String(),
        acks: Type.String(),
      }),
    }),
  },
  { title: 'ProvisionedDevice' },
);

export const RotatedSecretSchema = Type.Object(
  {
    deviceId: Type.String(),
    secret: Type.String({ description: 'the new device secret (also its MQTT password); shown only in this response' }),
    previousSecretValidUntil: {
      ...IsoTimeSchema,
      description: 'the secret the device had before stays accepted until then, so it can switch without losing its connection',
    },
  },
  { title: 'RotatedSecret' },
);
