/**
 * JSON codecs for MQTT payloads. Decoding never throws: it returns either the
 * value or a reason, because a bad payload is data to count, not an error to
 * crash on.
 */
import type { TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema, Static } from '@sinclair/typebox';
import {
  AckCheck,
  StatusCheck,
  TelemetryBatchCheck,
  TelemetrySampleCheck,
  CommandCheck,
  MAX_STATUS_BYTES,
  MAX_STATUS_EXTRAS,
  STATUS_EXTRA_NAME_PATTERN,
  PresenceEventCheck,
  ServiceHealthCheck,
  AggregateSnapshotCheck,
  type AggregateSnapshot,
  type ServiceHealth,
  type Ack,
  type PresenceEvent,
  type Command,
  type Status,
  type TelemetryPayload,
} from './messages.ts';

export type DecodeFailure = { ok: false; reason: 'not-json' | 'schema'; detail: string };
export type Decoded<T> = { ok: true; value: T } | DecodeFailure;

export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

export function parseJson(payload: Buffer | Uint8Array | string): Decoded<unknown> {
  try {
    const text =
      typeof payload === 'string'
        ? payload
        : Buffer.isBuffer(payload)
          ? payload.toString('utf8')
          : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reason: 'not-json', detail: (err as Error).message };
  }
}

/** Checks an already parsed value against a compiled schema. */
export function checkSchema<S extends TSchema>(check: TypeCheck<S>, value: unknown): Decoded<Static<S>> {
  if (check.Check(value)) return { ok: true, value };
  const first = check.Errors(value).First();
  const detail = first ? `${first.path || '/'}: ${first.message}` : 'does not match the schema';
  return { ok: false, reason: 'schema', detail };
}

function decodeWith<S extends TSchema>(check: TypeCheck<S>) {
  return (payload: Buffer | Uint8Array | string): Decoded<Static<S>> => {
    const parsed = parseJson(payload);
    return parsed.ok ? checkSchema(check, parsed.value) : parsed;
  };
}

/**
 * A telemetry payload is a sample or a `samples` batch; checking against the
 * one it claims to be gives a reason that names the field, where the union
 * would only say that neither matched.
 */
export function decodeTelemetry(payload: Buffer | Uint8Array | string): Decoded<TelemetryPayload> {
  const parsed = parseJson(payload);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  const isBatch = typeof value === 'object' && value !== null && 'samples' in value;
  return isBatch ? checkSchema(TelemetryBatchCheck, value) : checkSchema(TelemetrySampleCheck, value);
}
/** A status is small: its size is checked before parsing, so no payload can cost more than that. */
export function decodeStatus(payload: Buffer | Uint8Array | string): Decoded<Status> {
  const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (bytes > MAX_STATUS_BYTES) return { ok: false, reason: 'schema', detail: `status of ${bytes} bytes is larger than ${MAX_STATUS_BYTES}` };
  const decoded = decodeWith(StatusCheck)(payload);
  if (!decoded.ok) return decoded;
  let extras = 0;
  for (const name of Object.keys(decoded.value)) {
    if (name === 'online' || name === 'firmware') continue;
    if (!STATUS_EXTRA_NAME.test(name)) {
      return { ok: false, reason: 'schema', detail: `/${name}: status field names must match ${STATUS_EXTRA_NAME_PATTERN}` };
    }
    if (++extras > MAX_STATUS_EXTRAS) return { ok: false, reason: 'schema', detail: `a status carries at most ${MAX_STATUS_EXTRAS} extra fields` };
  }
  return decoded;
}
const STATUS_EXTRA_NAME = new RegExp(STATUS_EXTRA_NAME_PATTERN);
export const decodeServiceHealth: (payload: Buffer | Uint8Array | string) => Decoded<ServiceHealth> = decodeWith(ServiceHealthCheck);
export const decodeAggregateSnapshot: (payload: Buffer | Uint8Array | string) => Decoded<AggregateSnapshot> = decodeWith(AggregateSnapshotCheck);
export const decodePresenceEvent: (payload: Buffer | Uint8Array | string) => Decoded<PresenceEvent> = decodeWith(PresenceEventCheck);
export const decodeCommand: (payload: Buffer | Uint8Array | string) => Decoded<Command> = decodeWith(CommandCheck);
export const decodeAck: (payload: Buffer | Uint8Array | string) => Decoded<Ack> = decodeWith(AckCheck);
