/**
 * Messages as they move through the ingest pipeline. Each stage narrows or
 * enriches an envelope; a rejected envelope keeps flowing to the batch
 * writer, which dead-letters it and acknowledges it with the rest of its
 * batch, so the MQTT acknowledgement order never depends on validity.
 */
import type { Observable } from 'rxjs';
import type { DeviceType, PresenceEvent, Status, TelemetrySample } from '../protocol/index.ts';

/**
 * One message as a source received it, with the way to acknowledge it.
 * `ack()` is called once, after everything the message produced (telemetry,
 * twin, dead letter) has been committed to the stores; later calls do
 * nothing. Until then a QoS 1 publisher has no PUBACK and redelivers after a
 * crash or a restart.
 */
export interface InboundMessage {
  topic: string;
  payload: Buffer;
  /** MQTT client id of the publisher when the source knows it (the broker tap does). */
  clientId: string | null;
  /** True for a retained copy replayed at subscription time, not a live publish. */
  retained: boolean;
  receivedAtMs: number;
  ack(): void;
}

/** What a source has handed out and not yet had acknowledged. */
export interface InflightReport {
  count: number;
  /** receivedAtMs of the oldest unacknowledged message, null when none. */
  oldestReceivedAtMs: number | null;
}

/**
 * The pipeline's source port. Two implementations: the embedded broker's tap
 * (one process) and a persistent MQTT subscription (ingest as its own
 * process); both run the contract suite in sources/source.contract.ts.
 *
 * Lifecycle:
 * - `messages$` is subscribed once, by the pipeline. Messages that arrive
 *   before that wait (within the in-flight bound) or are refused so that
 *   their publisher retransmits; none is lost.
 * - Nothing is acknowledged to a publisher before the message's `ack()`; a
 *   message never acknowledged (the process stopped or crashed first) comes
 *   back: the device retransmits it, or the broker redelivers it to the
 *   persistent session.
 * - At most `maxInflight` messages are unacknowledged at once: beyond that
 *   the source stops reading (the broker stops reading device sockets, or
 *   the subscription withholds its flow), which is the pipeline's
 *   backpressure. In-flight accounting belongs to the source.
 * - `close()` stops taking messages and completes `messages$` (after the
 *   ones already handed out). Messages in flight can still be acknowledged
 *   after close; messages arriving after close are not handed out and not
 *   acknowledged, so they come back later. Idempotent.
 */
export interface IngestSource {
  readonly messages$: Observable<InboundMessage>;
  inflight(): InflightReport;
  close(): void;
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
  | 'stale-timestamp'
  | 'retained-telemetry'
  | 'too-many-metrics'
  | 'store-refused';

export interface RejectedEnvelope {
  kind: 'rejected';
  message: InboundMessage;
  reason: RejectReason;
  detail: string;
  /** False when the device's dead-letter budget is spent: the rejection is only counted. */
  storeLetter?: boolean;
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

/** A device's connection opened or closed, as the broker reported it. */
export interface PresenceEnvelope {
  kind: 'presence';
  message: InboundMessage;
  event: PresenceEvent;
}

/** The broker (re)started at `startedAtMs`: connections older than that are gone. */
export interface BrokerStartEnvelope {
  kind: 'broker-start';
  message: InboundMessage;
  startedAtMs: number;
}

/** Platform messages that are not about one device's data; they pass validation as they are. */
export type PlatformEnvelope = PresenceEnvelope | BrokerStartEnvelope;

/** Output of decode: syntactically valid, not yet checked against the registry. */
export type DecodedEnvelope = TelemetryEnvelope | StatusEnvelope | PlatformEnvelope | RejectedEnvelope;

/** Output of validate: accepted envelopes carry the registered device. */
export type ValidatedEnvelope =
  | (TelemetryEnvelope & { device: DeviceRef })
  | (StatusEnvelope & { device: DeviceRef })
  | PlatformEnvelope
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
