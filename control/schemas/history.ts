import { Type } from '@sinclair/typebox';
import { METRIC_NAME_PATTERN, MAX_METRICS_PER_SAMPLE } from '../../protocol/index.ts';
import { RESOLUTIONS, ROLLUP_RESOLUTIONS } from '../time-range.ts';
import { StringEnum, TimeParamSchema } from './common.ts';

export const MAX_RAW_LIMIT = 10_000;

/**
 * Forms of a rollup history answer. `points` (one object per bucket) is the
 * original form; `columns` (one array per field) is what a chart takes as
 * it is: no object per bucket to build or parse, no field name repeated per
 * bucket to send (a site's day at 1 minute is 40% of the bytes).
 */
export const HISTORY_FORMATS = ['points', 'columns'] as const;
export type HistoryFormat = (typeof HISTORY_FORMATS)[number];

const FormatParamSchema = StringEnum(HISTORY_FORMATS, {
  default: 'points',
  description: 'points: one object per bucket; columns: one array per field (ts, mean, min, …), index i of each is bucket i',
});

const MetricFilterSchema = Type.Array(Type.String({ pattern: METRIC_NAME_PATTERN }), {
  maxItems: MAX_METRICS_PER_SAMPLE,
  description: 'repeat to ask for several metrics; all metrics when absent',
});

export const TelemetryQuerySchema = Type.Object({
  metric: Type.Optional(MetricFilterSchema),
  from: Type.Optional(TimeParamSchema),
  to: Type.Optional(TimeParamSchema),
  resolution: Type.Optional(StringEnum(RESOLUTIONS, { default: 'raw', description: 'raw samples or rollups of this bucket width' })),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_RAW_LIMIT, default: 1000, description: 'most raw samples returned (raw only)' }),
  ),
  format: Type.Optional({ ...FormatParamSchema, description: `${FormatParamSchema.description}; columns needs a rollup resolution` }),
});

export const HistoryQuerySchema = Type.Object({
  metric: Type.Optional(MetricFilterSchema),
  from: Type.Optional(TimeParamSchema),
  to: Type.Optional(TimeParamSchema),
  resolution: Type.Optional(StringEnum(ROLLUP_RESOLUTIONS, { default: '1m', description: 'bucket width' })),
  format: Type.Optional(FormatParamSchema),
});

const RangeProperties = {
  from: Type.String({ format: 'date-time' }),
  to: Type.String({ format: 'date-time', description: 'exclusive' }),
};

export const RawTelemetrySchema = Type.Object(
  {
    deviceId: Type.String(),
    resolution: Type.Literal('raw'),
    ...RangeProperties,
    samples: Type.Array(
      Type.Object({
        ts: Type.Integer({ description: 'device time, ms since the epoch' }),
        seq: Type.Integer(),
        metrics: Type.Record(Type.String(), Type.Number()),
      }),
    ),
    truncated: Type.Boolean({ description: 'true when `limit` cut the answer; ask again from the last ts + 1' }),
  },
  { title: 'RawTelemetry' },
);

const RollupPointProperties = {
  ts: Type.Integer({ description: 'bucket start, ms since the epoch' }),
  min: Type.Number(),
  max: Type.Number(),
  mean: Type.Number(),
  last: Type.Number(),
  count: Type.Integer({ description: 'samples in the bucket' }),
};

export const DeviceRollupsSchema = Type.Object(
  {
    deviceId: Type.String(),
    resolution: StringEnum(ROLLUP_RESOLUTIONS),
    ...RangeProperties,
    series: Type.Array(Type.Object({ metric: Type.String(), points: Type.Array(Type.Object(RollupPointProperties)) })),
  },
  { title: 'DeviceRollups' },
);

/**
 * One array per field, of plain numbers. fast-json-stringify writes them
 * one number at a time on Node 20 (on Node 22 and later it hands arrays of
 * 128 numbers or more to JSON.stringify), about as fast as the same numbers
 * as fields of points; see docs/PERFORMANCE.md.
 */
const Integers = (description: string) => Type.Array(Type.Integer(), { description });
const Numbers = (description: string) => Type.Array(Type.Number(), { description });

const RollupColumnProperties = {
  metric: Type.String(),
  ts: Integers('bucket starts, ms since the epoch; index i of every array is bucket i'),
  mean: Numbers('mean of each bucket'),
  min: Numbers('minimum of each bucket'),
  max: Numbers('maximum of each bucket'),
  last: Numbers('last value of each bucket'),
  count: Integers('samples in each bucket'),
};

export const DeviceColumnsSchema = Type.Object(
  {
    deviceId: Type.String(),
    resolution: StringEnum(ROLLUP_RESOLUTIONS),
    ...RangeProperties,
    format: Type.Literal('columns'),
    series: Type.Array(Type.Object(RollupColumnProperties)),
  },
  { title: 'DeviceRollupColumns' },
);

// fast-json-stringify serializes a union with the first member the answer
// validates against (Ajv, in this order). A points or raw answer fails the
// columns member at once (no `format`), and a columns answer fails the
// others at its first series (no `points`/`samples`), so the price of the
// union is one validation of the form that matches (a fraction of a
// millisecond for a site's day at 1 minute, against several for writing it).
export const DeviceTelemetrySchema = Type.Union([DeviceColumnsSchema, RawTelemetrySchema, DeviceRollupsSchema]);

export const AggregatePointsSchema = Type.Object(
  {
    kind: StringEnum(['site', 'region', 'fleet'] as const),
    id: Type.String(),
    resolution: StringEnum(ROLLUP_RESOLUTIONS),
    ...RangeProperties,
    series: Type.Array(
      Type.Object({
        metric: Type.String(),
        points: Type.Array(
          Type.Object({
            ...RollupPointProperties,
            devicesReporting: Type.Integer({ description: 'devices that reported in the bucket' }),
            devicesTotal: Type.Integer({ description: 'active devices under the entity' }),
          }),
        ),
      }),
    ),
  },
  {
    title: 'AggregateHistory',
    description: 'sums over devices of each device\'s per-minute mean (means for percentages), with coverage per bucket',
  },
);

export const AggregateColumnsSchema = Type.Object(
  {
    kind: StringEnum(['site', 'region', 'fleet'] as const),
    id: Type.String(),
    resolution: StringEnum(ROLLUP_RESOLUTIONS),
    ...RangeProperties,
    format: Type.Literal('columns'),
    series: Type.Array(
      Type.Object({
        ...RollupColumnProperties,
        devicesReporting: Integers('devices that reported in each bucket'),
        devicesTotal: Integers('active devices under the entity in each bucket'),
        coverage: Numbers('devicesReporting / devicesTotal of each bucket, 0 when devicesTotal is 0'),
      }),
    ),
  },
  {
    title: 'AggregateHistoryColumns',
    description: 'the points of AggregateHistory as one array per field',
  },
);

/** What the history routes of sites, regions and the fleet say about their two forms. */
export const AGGREGATE_HISTORY_DESCRIPTION =
  'Rollups of the entity\'s kind, one series per metric, with coverage per bucket. `format=points` (the default) gives one object per bucket; ' +
  '`format=columns` one array per field (`ts`, `mean`, `min`, `max`, `last`, `count`, `devicesReporting`, `devicesTotal`, `coverage`), index i of each being bucket i: ' +
  'the same figures in fewer bytes, cheaper to build and to parse.';

/** A union, as DeviceTelemetrySchema (see there for what it costs to serialize). */
export const AggregateHistorySchema = Type.Union([AggregateColumnsSchema, AggregatePointsSchema]);
