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
    ts: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'measurement time, ms since the Unix epoch' }),
    seq: Type.Integer({
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'per-device counter, increases by one per sample; at most 2^53 - 1',
    }),
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

/** Largest status payload, in bytes: a status is a handful of fields. */
export const MAX_STATUS_BYTES = 4 * 1024;
/** Most extra (unknown) fields a status may carry; each a scalar. */
export const MAX_STATUS_EXTRAS = 16;
export const STATUS_EXTRA_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_]{0,31}$';

/**
 * A device's status. Besides the known fields, firmware may add up to
 * MAX_STATUS_EXTRAS scalar fields (short strings, finite numbers, booleans):
 * nothing nested, so a status is bounded in size and depth.
 */
export const StatusSchema = Type.Object(
  {
    online: Type.Boolean(),
    firmware: Type.Optional(Type.String({ maxLength: 64 })),
  },
  {
    maxProperties: 2 + MAX_STATUS_EXTRAS,
    additionalProperties: Type.Union([Type.String({ maxLength: 128 }), Type.Number(), Type.Boolean(), Type.Null()]),
  },
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
    /**
     * What the device actually does, when it differs from what was asked
     * (a setpoint clipped to its limits): e.g. `{"powerW": 5000}`, with the
     * reason saying why.
     */
    applied: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][A-Za-z0-9]{0,31}$' }), Type.Union([Type.Number(), Type.String({ maxLength: 64 }), Type.Null()]), {
        maxProperties: 8,
        // Without it, keys that miss the pattern would pass unchecked.
        additionalProperties: false,
      }),
    ),
  },
  { additionalProperties: false },
);
export type Ack = Static<typeof AckSchema>;

export const TelemetrySampleCheck = TypeCompiler.Compile(TelemetrySampleSchema);
export const TelemetryBatchCheck = TypeCompiler.Compile(TelemetryBatchSchema);
export const StatusCheck = TypeCompiler.Compile(StatusSchema);
export const CommandCheck = TypeCompiler.Compile(CommandSchema);

/**
 * A device's connection opened or closed, as the broker saw it (broker
 * clock). `brokerStartedAtMs` tells which broker run it belongs to.
 */
export const PRESENCE_REASONS = ['connected', 'disconnected', 'connection-lost', 'taken-over', 'revoked', 'secret-expired', 'broker-closing'] as const;
export const PresenceEventSchema = Type.Object(
  {
    deviceId: Type.String({ minLength: 1, maxLength: 64 }),
    connected: Type.Boolean(),
    reason: Type.Union(PRESENCE_REASONS.map((r) => Type.Literal(r))),
    ts: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    brokerStartedAtMs: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  },
  { additionalProperties: false },
);
export type PresenceEvent = Static<typeof PresenceEventSchema>;
export const PresenceEventCheck = TypeCompiler.Compile(PresenceEventSchema);
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
  /** When this run of the service started; the broker's tells which connections are gone after a restart. */
  startedAtMs: Type.Optional(Type.Integer()),
  /** Ingest only: whether the pipeline is committing. */
  pipeline: Type.Optional(
    Type.Object({
      inflight: Type.Integer({ minimum: 0, description: 'messages received and not yet acknowledged' }),
      oldestUnackedAgeMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
      lastCommitAtMs: Type.Union([Type.Integer(), Type.Null()]),
      stalled: Type.Boolean({ description: 'messages wait and nothing was committed for longer than the stall bound' }),
    }),
  ),
  counters: Type.Record(Type.String(), Type.Number()),
});
export type ServiceHealth = Static<typeof ServiceHealthSchema>;
export const AggregateSnapshotCheck = TypeCompiler.Compile(AggregateSnapshotSchema);
export const ServiceHealthCheck = TypeCompiler.Compile(ServiceHealthSchema);
