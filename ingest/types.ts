/**
 * Messages as they move through the ingest pipeline. Each stage narrows or
 * enriches an envelope; a rejected envelope keeps flowing to the batch
 * writer, which dead-letters it and acknowledges it with the rest of its
 * batch, so the MQTT acknowledgement order never depends on validity.
 */
import type { DeviceType, Status, TelemetrySample } from '../protocol/index.ts';

/**
 * The pipeline's source port: one message as received, with the way to
 * acknowledge it. `ack()` is called exactly once, after everything the message
 * produced (telemetry, twin, dead letter) has been committed to the stores.
 * Until then a QoS 1 publisher has no PUBACK and will redeliver after a crash.
 */
export interface InboundMessage {
  topic: string;
  payload: Buffer;
  /** MQTT client id of the publisher when the source knows it (the broker tap does). */
  clientId: string | null;
  receivedAtMs: number;
  ack(): void;
}

export interface DeviceRef {
  id: string;
  type: DeviceType;
  siteId: string;
}

export type RejectReason =
  | 'unexpected-topic'
  | 'wrong-client'
  | 'not-json'
  | 'schema'
  | 'unknown-device'
  | 'absurd-value'
  | 'future-timestamp'
  | 'stale-timestamp';

export interface RejectedEnvelope {
  kind: 'rejected';
  message: InboundMessage;
  reason: RejectReason;
  detail: string;
}

export interface TelemetryEnvelope {
  kind: 'telemetry';
  message: InboundMessage;
  deviceId: string;
  samples: TelemetrySample[];
}

export interface StatusEnvelope {
  kind: 'status';
  message: InboundMessage;
  deviceId: string;
  status: Status;
}

/** Output of decode: syntactically valid, not yet checked against the registry. */
export type DecodedEnvelope = TelemetryEnvelope | StatusEnvelope | RejectedEnvelope;

/** Output of validate: accepted envelopes carry the registered device. */
export type ValidatedEnvelope =
  | (TelemetryEnvelope & { device: DeviceRef })
  | (StatusEnvelope & { device: DeviceRef })
  | RejectedEnvelope;

/** One sample that the store has committed, as the rollup stage sees it. */
export interface CommittedSample {
  device: DeviceRef;
  ts: number;
  metrics: Record<string, number>;
}

/** What batch-write emits after a commit: only samples that were new (not redeliveries). */
export interface CommittedBatch {
  messages: number;
  samplesWritten: number;
  duplicates: number;
  rejected: number;
  newSamples: CommittedSample[];
}
