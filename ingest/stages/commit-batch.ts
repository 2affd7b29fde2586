/**
 * What batch-write does with the stores: commit a batch (its dead letters,
 * the twin states of its devices, its telemetry), then acknowledge every
 * message in it; or, for a message the store refuses on its own,
 * dead-letter it with reason 'store-refused' and acknowledge it.
 *
 * A commit that fails part way is resumed by the next attempt: dead letters
 * already stored are not stored again (tracked per envelope, across retries
 * and splits); telemetry writes are idempotent; twin states are saved again.
 */
import type { Logger } from 'pino';
import {
  StoreError,
  type DeadLetter,
  type DeadLetterStore,
  type TelemetryPoint,
  type TelemetryStore,
  type TwinStore,
} from '../../store/types.ts';
import type { IngestCounters } from '../counters.ts';
import type { Twin } from '../twin.ts';
import type { CommittedBatch, CommittedSample, RejectedEnvelope, ValidatedEnvelope } from '../types.ts';

/** When the pipeline last committed: read by the heartbeat to tell a stalled pipeline. */
export interface PipelineProgress {
  lastCommitAtMs: number | null;
}

export interface BatchCommitterDeps {
  telemetry: TelemetryStore;
  deadLetters: DeadLetterStore;
  twins: TwinStore;
  twin: Twin;
  counters: IngestCounters;
  progress: PipelineProgress;
  clock: () => number;
  logger: Logger;
}

export interface BatchCommitter {
  commit(batch: readonly ValidatedEnvelope[]): Promise<CommittedBatch>;
  isolate(envelope: ValidatedEnvelope, error: unknown): Promise<CommittedBatch>;
}

/** The store's own word on whether trying again can help (see StoreErrorCode). */
export function isTransientStoreError(error: unknown): boolean {
  return error instanceof StoreError && error.code === 'unavailable';
}

function letterOf(envelope: RejectedEnvelope): DeadLetter {
  const { message } = envelope;
  return {
    receivedAtMs: message.receivedAtMs,
    topic: message.topic,
    clientId: message.clientId,
    reason: envelope.reason,
    detail: envelope.detail,
    payload: message.payload,
  };
}

export function createBatchCommitter(deps: BatchCommitterDeps): BatchCommitter {
  const { counters } = deps;
  const lettersStored = new WeakSet<ValidatedEnvelope>();

  function committed(batch: readonly ValidatedEnvelope[], result: Omit<CommittedBatch, 'messages'>): CommittedBatch {
    for (const envelope of batch) envelope.message.ack();
    deps.progress.lastCommitAtMs = deps.clock();
    counters.batchesCommitted++;
    counters.samplesCommitted += result.samplesWritten;
    counters.duplicateSamples += result.duplicates;
    return { messages: batch.length, ...result };
  }

  return {
    async commit(batch) {
      const startedAt = performance.now();
      const result = await commitBatch(batch);
      counters.onBatchCommitted?.(result.samplesWritten, (performance.now() - startedAt) / 1_000);
      return result;
    },
    isolate,
  };

  async function commitBatch(batch: readonly ValidatedEnvelope[]): Promise<CommittedBatch> {
    const points: TelemetryPoint[] = [];
    const owners: CommittedSample['device'][] = [];
    const pending: RejectedEnvelope[] = [];
    const devices = new Set<string>();
    let rejected = 0;
    for (const envelope of batch) {
      switch (envelope.kind) {
        case 'telemetry':
          devices.add(envelope.deviceId);
          for (const sample of envelope.samples) {
            points.push({ deviceId: envelope.deviceId, ts: sample.ts, seq: sample.seq, metrics: sample.metrics });
            owners.push(envelope.device);
          }
          break;
        case 'status':
          devices.add(envelope.deviceId);
          break;
        case 'presence':
          devices.add(envelope.event.deviceId);
          break;
        case 'rejected':
          rejected++;
          if (envelope.storeLetter !== false && !lettersStored.has(envelope)) pending.push(envelope);
          break;
        case 'broker-start':
          // Its presence changes touch many devices; the periodic twin flush saves them.
          break;
      }
    }
    if (pending.length > 0) {
      deps.deadLetters.addDeadLetters(pending.map(letterOf));
      for (const envelope of pending) lettersStored.add(envelope);
    }
    const states = deps.twin.takeDirty(devices);
    try {
      if (states.length > 0) deps.twins.saveDeviceStates(states);
    } catch (error) {
      deps.twin.markDirty(states.map((s) => s.deviceId));
      throw error;
    }
    const result = points.length > 0 ? await deps.telemetry.writeTelemetry(points) : { inserted: [] };
    const newSamples: CommittedSample[] = [];
    for (let i = 0; i < points.length; i++) {
      if (result.inserted[i]) newSamples.push({ device: owners[i]!, ts: points[i]!.ts, metrics: points[i]!.metrics });
    }
    return committed(batch, {
      samplesWritten: newSamples.length,
      duplicates: points.length - newSamples.length,
      rejected,
      newSamples,
    });
  }

  async function isolate(envelope: ValidatedEnvelope, error: unknown): Promise<CommittedBatch> {
    counters.reject('store-refused');
    const deviceId = envelope.kind === 'telemetry' || envelope.kind === 'status' ? envelope.deviceId : undefined;
    deps.logger.warn({ err: error, topic: envelope.message.topic }, 'store refused a message; dead-lettered, the rest of its batch committed');
    if (deviceId !== undefined) {
      // Drop what memory took from the refused message: the stored state is the truth.
      try {
        deps.twin.restore(deviceId, deps.twins.getDeviceState(deviceId));
      } catch (restoreError) {
        if (isTransientStoreError(restoreError)) throw restoreError;
        deps.twin.forget(deviceId);
      }
    }
    const detail = error instanceof Error ? error.message : String(error);
    try {
      deps.deadLetters.addDeadLetters([
        {
          receivedAtMs: envelope.message.receivedAtMs,
          topic: envelope.message.topic,
          clientId: envelope.message.clientId,
          reason: 'store-refused',
          detail,
          payload: envelope.message.payload,
        },
      ]);
    } catch (letterError) {
      if (isTransientStoreError(letterError)) throw letterError;
      // Even its dead letter is refused: it is counted, and acknowledged so that it cannot come back.
      counters.deadLettersLost++;
    }
    return committed([envelope], { samplesWritten: 0, duplicates: 0, rejected: 1, newSamples: [] });
  }
}
