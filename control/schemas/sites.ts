import { Type } from '@sinclair/typebox';
import { AggregateSnapshotSchema } from '../../protocol/index.ts';
import { IsoTimeSchema, Nullable } from './common.ts';
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

/**
 * A number or null as a JSON Schema type list rather than Nullable's anyOf:
 * fast-json-stringify writes a type list inline, where an anyOf costs an Ajv
 * validation per item (ten thousand per column of the overview).
 */
const NumberOrNull = (description: string) => Type.Unsafe<number | null>({ type: ['number', 'null'], description });

const Strings = (description: string) => Type.Array(Type.String(), { description });
const Integers = (description: string) => Type.Array(Type.Integer({ minimum: 0 }), { description });
const Numbers = (description: string) => Type.Array(Type.Number(), { description });

export const SitesOverviewColumnsSchema = Type.Object(
  {
    id: Strings('site ids, in id order; index i of every column is site i'),
    name: Strings('site names'),
    region: Strings('regions'),
    devicesTotal: Integers('active devices, from the live aggregate\'s coverage (the registry\'s count before the site has one)'),
    devicesReporting: Integers('devices counted in the live aggregate (online and heard from within its window); 0 before the site has one'),
    socPct: Type.Array(NumberOrNull('energyWh / capacityWh of the reporting batteries; null without any, or without a live aggregate')),
    batteryPowerW: Numbers('positive when the batteries discharge (deliver), negative when they charge; 0 without a live aggregate'),
    solarPowerW: Numbers('solar production; 0 without a live aggregate'),
    gridPowerW: Numbers('at the meters: positive when the site imports from the grid, negative when it exports; 0 without a live aggregate'),
    loadW: Numbers('household consumption; 0 without a live aggregate'),
    openAlerts: Integers('open alerts (firing or acknowledged) whose subject is the site or one of its devices'),
    criticalAlerts: Integers('those of openAlerts whose severity is critical'),
    updatedAt: Type.Array(NumberOrNull('when the live aggregate was computed, ms since the epoch; null without one')),
  },
  { title: 'SitesOverviewColumns' },
);

export const SitesOverviewSchema = Type.Object(
  {
    at: { ...IsoTimeSchema, description: 'when the overview was read' },
    count: Type.Integer({ minimum: 0, description: 'number of sites (the length of every column)' }),
    columns: SitesOverviewColumnsSchema,
  },
  { title: 'SitesOverview' },
);
