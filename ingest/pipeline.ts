/**
 * The ingest pipeline, as a diagram:
 *
 *   source → decode → validate → count → updateTwin → batchWrite (ack) → rollup → writeRollups
 *
 * It completes when the source completes, after the last batch is committed
 * and acknowledged and every open rollup minute has been flushed.
 */
import type { Observable, SchedulerLike } from 'rxjs';
import type { Logger } from 'pino';
import type { DeadLetterStore, TelemetryStore, TwinStore } from '../store/types.ts';
import type { IngestCounters } from './counters.ts';
import type { Directory } from './directory.ts';
import type { RollupAccumulator } from './rollup-accumulator.ts';
import { batchWrite } from './stages/batch-write.ts';
import { countOutcomes } from './stages/count-outcomes.ts';
import { decode } from './stages/decode.ts';
import { rollup } from './stages/rollup.ts';
import { updateTwin } from './stages/update-twin.ts';
import { validate } from './stages/validate.ts';
import { writeRollups } from './stages/write-rollups.ts';
import type { Twin } from './twin.ts';
import type { InboundMessage } from './types.ts';

export interface PipelineSettings {
  maxBatchMessages: number;
  maxBatchDelayMs: number;
  writeRetryDelayMs: number;
  maxFutureMs: number;
  maxAgeMs: number;
  rollupFlushEveryMs: number;
}

export interface PipelineDeps {
  telemetry: TelemetryStore;
  twins: TwinStore;
  deadLetters: DeadLetterStore;
  directory: Directory;
  twin: Twin;
  accumulator: RollupAccumulator;
  counters: IngestCounters;
  clock: () => number;
  logger: Logger;
  scheduler?: SchedulerLike;
}

/** Emits the number of rollups written after each rollup write. */
export function runPipeline(messages$: Observable<InboundMessage>, deps: PipelineDeps, settings: PipelineSettings): Observable<number> {
  const { telemetry, counters, clock, scheduler, logger } = deps;
  const findDevice = (id: string) => deps.directory.findDevice(id);
  return messages$.pipe(
    decode(),
    validate({ findDevice, clock, maxFutureMs: settings.maxFutureMs, maxAgeMs: settings.maxAgeMs }),
    countOutcomes(counters),
    updateTwin(deps.twin),
    batchWrite({ ...deps, maxBatchMessages: settings.maxBatchMessages, maxBatchDelayMs: settings.maxBatchDelayMs, retryDelayMs: settings.writeRetryDelayMs }),
    rollup({ accumulator: deps.accumulator, counters, telemetry, findDevice, clock, flushEveryMs: settings.rollupFlushEveryMs, scheduler }),
    writeRollups({ telemetry, counters, logger, retryDelayMs: settings.writeRetryDelayMs, maxAttempts: 5, scheduler }),
  );
}
