/**
 * batchWrite: groups envelopes into batches (by size and by time), commits
 * each batch (dead letters, twin states, telemetry) and only then
 * acknowledges every message in it. Batches are written one at a time, in
 * order. A failed write is retried with backoff, forever: nothing is acked or
 * dropped meanwhile, and the sources stop taking new messages once their
 * in-flight bound is reached, which is the pipeline's backpressure.
 *
 * Emits one CommittedBatch per commit, listing only the samples that were new
 * to the store, so that a redelivered message is not counted twice in rollups.
 */
import { bufferTime, concatMap, defer, filter, retry, timer, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { Logger } from 'pino';
import type { DeadLetter, DeadLetterStore, DeviceState, TelemetryPoint, TelemetryStore, TwinStore } from '../../store/types.ts';
import type { IngestCounters } from '../counters.ts';
import type { Twin } from '../twin.ts';
import type { CommittedBatch, CommittedSample, ValidatedEnvelope } from '../types.ts';

export interface BatchWriteOptions {
  telemetry: TelemetryStore;
  deadLetters: DeadLetterStore;
  twins: TwinStore;
  twin: Twin;
  counters: IngestCounters;
  logger: Logger;
  /** A batch is written when it holds this many messages… */
  maxBatchMessages: number;
  /** …or when its first message has waited this long. */
  maxBatchDelayMs: number;
  /** First retry delay after a failed write; doubles up to 30 s. */
  retryDelayMs: number;
  scheduler?: SchedulerLike;
}

const MAX_RETRY_DELAY_MS = 30_000;

export function batchWrite(options: BatchWriteOptions): OperatorFunction<ValidatedEnvelope, CommittedBatch> {
  return (envelopes$) =>
    envelopes$.pipe(
      bufferTime(options.maxBatchDelayMs, null, options.maxBatchMessages, options.scheduler),
      filter((batch) => batch.length > 0),
      concatMap((batch) => {
        const commit = createCommit(batch, options);
        return defer(commit).pipe(
          retry({
            delay: (error: unknown, attempt) => {
              options.counters.writeFailures++;
              const delayMs = Math.min(options.retryDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
              // Nothing is lost yet (messages stay unacknowledged), but an
              // operator must act if this goes on: it is an error.
              options.logger.error({ err: error, attempt, delayMs, messages: batch.length }, 'store write failed; retrying');
              return timer(delayMs, options.scheduler);
            },
          }),
        );
      }),
    );
}

/**
 * Returns a function that commits the batch; calling it again after a failure
 * resumes after the steps that already succeeded.
 */
function createCommit(batch: readonly ValidatedEnvelope[], options: BatchWriteOptions): () => Promise<CommittedBatch> {
  const points: TelemetryPoint[] = [];
  const owners: CommittedSample['device'][] = [];
  const letters: DeadLetter[] = [];
  for (const envelope of batch) {
    if (envelope.kind === 'telemetry') {
      for (const sample of envelope.samples) {
        points.push({ deviceId: envelope.deviceId, ts: sample.ts, seq: sample.seq, metrics: sample.metrics });
        owners.push(envelope.device);
      }
    } else if (envelope.kind === 'rejected') {
      const { message } = envelope;
      letters.push({
        receivedAtMs: message.receivedAtMs,
        topic: message.topic,
        clientId: message.clientId,
        reason: envelope.reason,
        detail: envelope.detail,
        payload: message.payload,
      });
    }
  }
  let states: DeviceState[] | undefined;
  let lettersSaved = letters.length === 0;
  let statesSaved = false;

  return async () => {
    if (!lettersSaved) {
      options.deadLetters.addDeadLetters(letters);
      lettersSaved = true;
    }
    states ??= options.twin.takeDirty();
    if (!statesSaved) {
      if (states.length > 0) options.twins.saveDeviceStates(states);
      statesSaved = true;
    }
    const result = points.length > 0 ? await options.telemetry.writeTelemetry(points) : { inserted: [] };

    const newSamples: CommittedSample[] = [];
    for (let i = 0; i < points.length; i++) {
      if (result.inserted[i]) newSamples.push({ device: owners[i]!, ts: points[i]!.ts, metrics: points[i]!.metrics });
    }
    for (const envelope of batch) envelope.message.ack();

    const { counters } = options;
    counters.batchesCommitted++;
    counters.samplesCommitted += newSamples.length;
    counters.duplicateSamples += points.length - newSamples.length;
    return {
      messages: batch.length,
      samplesWritten: newSamples.length,
      duplicates: points.length - newSamples.length,
      rejected: letters.length,
      newSamples,
    };
  };
}
