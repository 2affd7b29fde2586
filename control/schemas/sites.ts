import { Type } from '@sinclair/typebox';
import { AggregateSnapshotSchema } from '../../protocol/index.ts';
import { Nullable } from './common.ts';
import { DeviceTwinSchema, EntityIdSchema, NewSiteSchema } from './devices.ts';

export const SiteBodySchema = Type.Object(
  { id: EntityIdSchema, ...NewSiteSchema.properties },
  { additionalProperties: false },
);

export const SiteSchema = Type.Object({ id: Type.String(), region: Type.String(), name: Type.String() }, { title: 'Site' });

export const LiveAggregateSchema = Nullable(AggregateSnapshotSchema);

export const SiteSummarySchema = Type.Object(
  {
    ...SiteSchema.properties,
    deviceCount: Type.Integer({ minimum: 0, description: 'active (not revoked) devices' }),
    live: LiveAggregateSchema,
  },
  { title: 'SiteSummary' },
);

export const SiteListSchema = Type.Object({ items: Type.Array(SiteSummarySchema) });

export const SiteDetailSchema = Type.Object(
  {
    ...SiteSummarySchema.properties,
    devices: Type.Array(DeviceTwinSchema, { description: 'every device of the site, revoked ones included' }),
  },
  { title: 'SiteDetail' },
);

export const FleetLiveSchema = Type.Object(
  {
    fleet: LiveAggregateSchema,
    regions: Type.Array(AggregateSnapshotSchema),
  },
  { title: 'FleetLive' },
);
