/**
 * Payload schemas of the MQTT contract, as TypeBox schemas: one definition
 * gives the JSON Schema (documented in README.md), the static type and a
 * compiled validator.
 */
import { FormatRegistry, Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { MAX_METRICS_PER_SAMPLE, METRIC_NAME_PATTERN } from './metrics.ts';

// TypeBox checks string formats only through its registry; command ids are UUIDs.
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
if (!FormatRegistry.Has('uuid')) FormatRegistry.Set('uuid', (value) => UUID_PATTERN.test(value));

/** Largest MQTT packet the broker accepts, in bytes. */
export const MAX_PACKET_BYTES = 256 * 1024;
/** Most samples in one buffered `samples` message. */
export const MAX_SAMPLES_PER_MESSAGE = 2_000;

export const TelemetrySampleSchema = Type.Object(
  {
    ts: Type.Integer({ minimum: 0, description: 'measurement time, ms since the Unix epoch' }),
    seq: Type.Integer({ minimum: 0, description: 'per-device counter, increases by one per sample' }),
    metrics: Type.Record(Type.String({ pattern: METRIC_NAME_PATTERN }), Type.Number(), {
      minProperties: 1,
      maxProperties: MAX_METRICS_PER_SAMPLE,
      // Without it, keys that miss the pattern would pass unchecked.
      additionalProperties: false,
    }),
  },
  { additionalProperties: false },
);
export type TelemetrySample = Static<typeof TelemetrySampleSchema>;

export const TelemetryBatchSchema = Type.Object(
  { samples: Type.Array(TelemetrySampleSchema, { minItems: 1, maxItems: MAX_SAMPLES_PER_MESSAGE }) },
  { additionalProperties: false },
);
export type TelemetryBatch = Static<typeof TelemetryBatchSchema>;

/** A telemetry payload is one sample or a buffered batch of samples. */
export const TelemetryPayloadSchema = Type.Union([TelemetrySampleSchema, TelemetryBatchSchema]);
export type TelemetryPayload = Static<typeof TelemetryPayloadSchema>;

export const StatusSchema = Type.Object(
  {
    online: Type.Boolean(),
    firmware: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: true },
);
export type Status = Static<typeof StatusSchema>;

export const CommandSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid', minLength: 36, maxLength: 36 }),
    type: Type.String({ minLength: 1, maxLength: 64 }),
    params: Type.Record(Type.String(), Type.Unknown()),
    expiresAt: Type.Integer({ minimum: 0, description: 'ms since the Unix epoch; a device ignores an expired command' }),
  },
  { additionalProperties: false },
);
export type Command = Static<typeof CommandSchema>;

export const ACK_STATUSES = ['accepted', 'rejected', 'completed'] as const;
export const AckSchema = Type.Object(
  {
    commandId: Type.String({ minLength: 1, maxLength: 64 }),
    status: Type.Union(ACK_STATUSES.map((s) => Type.Literal(s))),
    reason: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type Ack = Static<typeof AckSchema>;

export const TelemetrySampleCheck = TypeCompiler.Compile(TelemetrySampleSchema);
export const TelemetryBatchCheck = TypeCompiler.Compile(TelemetryBatchSchema);
export const StatusCheck = TypeCompiler.Compile(StatusSchema);
export const CommandCheck = TypeCompiler.Compile(CommandSchema);
export const AckCheck = TypeCompiler.Compile(AckSchema);

/** Normalises a telemetry payload to its list of samples. */
export function samplesOf(payload: TelemetryPayload): TelemetrySample[] {
  return 'samples' in payload ? payload.samples : [payload];
}

/**
 * Live aggregate of a site, a region or the fleet, published retained on
 * `aggregateTopic(level, id)` by ingest: the fleet and regions about once a
 * second, sites every few seconds. Devices that
 * have not reported within `windowMs` are left out, and coverage says so.
 */
export const AggregateSnapshotSchema = Type.Object({
  level: Type.Union([Type.Literal('site'), Type.Literal('region'), Type.Literal('fleet')]),
  id: Type.String(),
  ts: Type.Integer({ description: 'when the snapshot was computed, ms since the Unix epoch' }),
  windowMs: Type.Integer({ description: 'a device counts as reporting when heard from within this window' }),
  coverage: Type.Object({
    devicesReporting: Type.Integer({ minimum: 0 }),
    devicesTotal: Type.Integer({ minimum: 0 }),
    ratio: Type.Number({ minimum: 0, maximum: 1, description: 'devicesReporting / devicesTotal, 0 when there are no devices' }),
  }),
  metrics: Type.Object({
    batteryPowerW: Type.Number({ description: 'sum over batteries; positive when discharging' }),
    solarPowerW: Type.Number({ description: 'sum over solar inverters' }),
    gridPowerW: Type.Number({ description: 'sum over meters; positive when importing' }),
    loadW: Type.Number({ description: 'sum of household consumption' }),
    energyWh: Type.Number({ description: 'energy stored in reporting batteries' }),
    capacityWh: Type.Number({ description: 'usable capacity of reporting batteries' }),
    socPct: Type.Union([Type.Number(), Type.Null()], { description: 'energyWh / capacityWh, null without reporting batteries' }),
  }),
});
export type AggregateSnapshot = Static<typeof AggregateSnapshotSchema>;
export type AggregateMetrics = AggregateSnapshot['metrics'];

/**
 * Heartbeat of a platform service, published retained on
 * `serviceHealthTopic(service)` every few seconds, so that other processes
 * (control's /healthz) know it is alive without sharing memory.
 */
export const ServiceHealthSchema = Type.Object({
  service: Type.String(),
  ts: Type.Integer(),
  ok: Type.Boolean(),
  detail: Type.Optional(Type.String()),
  counters: Type.Record(Type.String(), Type.Number()),
});
export type ServiceHealth = Static<typeof ServiceHealthSchema>;
export const AggregateSnapshotCheck = TypeCompiler.Compile(AggregateSnapshotSchema);
export const ServiceHealthCheck = TypeCompiler.Compile(ServiceHealthSchema);
