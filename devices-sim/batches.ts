/**
 * Splitting a device's offline buffer into `{"samples": [...]}` messages
 * within the protocol's limits: at most MAX_SAMPLES_PER_MESSAGE samples and
 * MAX_PACKET_BYTES bytes per message (less room for the MQTT header and topic).
 * Pure.
 */
import { MAX_PACKET_BYTES, MAX_SAMPLES_PER_MESSAGE } from '../protocol/index.ts';

/** A sample already encoded as JSON, with its sequence number. */
export interface EncodedSample {
  seq: number;
  json: string;
}

/** Room kept in a packet for the fixed header and the topic. */
const PACKET_OVERHEAD_BYTES = 512;
const BATCH_WRAPPER_BYTES = '{"samples":[]}'.length;

export interface BatchLimits {
  maxSamples: number;
  maxPayloadBytes: number;
}

export const PROTOCOL_BATCH_LIMITS: BatchLimits = {
  maxSamples: MAX_SAMPLES_PER_MESSAGE,
  maxPayloadBytes: MAX_PACKET_BYTES - PACKET_OVERHEAD_BYTES,
};

/** Groups samples, in order, into as few batches as the limits allow. */
export function splitIntoBatches<T extends EncodedSample>(samples: readonly T[], limits: BatchLimits = PROTOCOL_BATCH_LIMITS): T[][] {
  const batches: T[][] = [];
  let batch: T[] = [];
  let bytes = BATCH_WRAPPER_BYTES;
  for (const sample of samples) {
    const sampleBytes = Buffer.byteLength(sample.json);
    // A sample after the first one also costs its comma.
    if (batch.length > 0 && (batch.length >= limits.maxSamples || bytes + 1 + sampleBytes > limits.maxPayloadBytes)) {
      batches.push(batch);
      batch = [];
      bytes = BATCH_WRAPPER_BYTES;
    }
    bytes += (batch.length > 0 ? 1 : 0) + sampleBytes;
    batch.push(sample);
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

export function encodeBatch(samples: readonly EncodedSample[]): string {
  return `{"samples":[${samples.map((sample) => sample.json).join(',')}]}`;
}
