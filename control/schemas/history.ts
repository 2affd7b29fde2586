import { Type } from '@sinclair/typebox';
import { METRIC_NAME_PATTERN, MAX_METRICS_PER_SAMPLE } from '../../protocol/index.ts';
import { RESOLUTIONS, ROLLUP_RESOLUTIONS } from '../time-range.ts';
import { StringEnum, TimeParamSchema } from './common.ts';

export const MAX_RAW_LIMIT = 10_000;

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
});

export const HistoryQuerySchema = Type.Object({
  metric: Type.Optional(MetricFilterSchema),
  from: Type.Optional(TimeParamSchema),
  to: Type.Optional(TimeParamSchema),
  resolution: Type.Optional(StringEnum(ROLLUP_RESOLUTIONS, { default: '1m', description: 'bucket width' })),
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

export const DeviceTelemetrySchema = Type.Union([RawTelemetrySchema, DeviceRollupsSchema]);

export const AggregateHistorySchema = Type.Object(
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
