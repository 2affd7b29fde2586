/**
 * The ingest pipeline, as a diagram:
 *
 *   source → decode → validate → count → budgetDeadLetters → updateTwin
 *          → batchWrite (commit, then ack; isolate what the store refuses) → evaluateRules
 *          → rollup → writeRollups
 *
 * It completes when the source completes, after the last batch is committed
 * and acknowledged and every open rollup minute has been flushed.
 */
import type { Observable, SchedulerLike } from 'rxjs';
import type { Logger } from 'pino';
import type { DeadLetterStore, TelemetryStore, TwinStore } from '../store/types.ts';
import type { IngestCounters } from './counters.ts';
import type { DeadLetterBudget } from './dead-letter-budget.ts';
import type { Directory } from './directory.ts';
import type { RollupAccumulator } from './rollup-accumulator.ts';
import { batchWrite } from './stages/batch-write.ts';
import { budgetDeadLetters } from './stages/budget-dead-letters.ts';
import { createBatchCommitter, isTransientStoreError, type PipelineProgress } from './stages/commit-batch.ts';
import { countOutcomes } from './stages/count-outcomes.ts';
import { decode } from './stages/decode.ts';
import { evaluateRules } from './stages/evaluate-rules.ts';
import type { RuleInput } from './rules/rule-engine.ts';
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
  maxMetricsPerDevice: number;
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
  deadLetterBudget: DeadLetterBudget;
  progress: PipelineProgress;
  clock: () => number;
  logger: Logger;
  /** Where committed samples go for alert rules; none when no rules run. */
  rules?: (input: RuleInput) => void;
  scheduler?: SchedulerLike;
}

/** Emits the number of rollups written after each rollup write. */
export function runPipeline(messages$: Observable<InboundMessage>, deps: PipelineDeps, settings: PipelineSettings): Observable<number> {
  const { telemetry, counters, clock, scheduler, logger, twin } = deps;
  const findDevice = (id: string) => deps.directory.findDevice(id);
  const committer = createBatchCommitter(deps);
  return messages$.pipe(
    decode(),
    validate({
      findDevice,
      clock,
      maxFutureMs: settings.maxFutureMs,
      maxAgeMs: settings.maxAgeMs,
      maxMetricsPerDevice: settings.maxMetricsPerDevice,
      wouldExceedMetrics: (deviceId, samples) => twin.wouldExceedMetrics(deviceId, samples),
    }),
    countOutcomes(counters),
    budgetDeadLetters(deps.deadLetterBudget, counters, clock),
    updateTwin(twin),
    batchWrite({
      commit: (batch) => committer.commit(batch),
      isolate: (envelope, error) => committer.isolate(envelope, error),
      isTransient: isTransientStoreError,
      onRetry: (error, attempt, delayMs, messages) => {
        counters.writeFailures++;
        // Nothing is lost yet (messages stay unacknowledged), but an
        // operator must act if this goes on: it is an error.
        logger.error({ err: error, attempt, delayMs, messages }, 'store write failed; retrying');
      },
      onSplit: () => counters.batchSplits++,
      maxBatchMessages: settings.maxBatchMessages,
      maxBatchDelayMs: settings.maxBatchDelayMs,
      retryDelayMs: settings.writeRetryDelayMs,
      scheduler,
    }),
    evaluateRules(deps.rules),
    rollup({ accumulator: deps.accumulator, counters, telemetry, findDevice, clock, flushEveryMs: settings.rollupFlushEveryMs, scheduler }),
    writeRollups({ telemetry, counters, logger, retryDelayMs: settings.writeRetryDelayMs, maxAttempts: 5, scheduler }),
  );
}
