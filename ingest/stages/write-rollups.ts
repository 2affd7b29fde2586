/**
 * writeRollups: stores rollups, one write at a time; a failed write is retried
 * with backoff (rollups can always be recomputed from raw telemetry, so the
 * retry is bounded: after the last attempt the rows are counted as failed).
 */
import { catchError, concatMap, defer, EMPTY, map, retry, timer, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { Logger } from 'pino';
import type { Rollup, TelemetryStore } from '../../store/types.ts';
import type { IngestCounters } from '../counters.ts';

export interface WriteRollupsOptions {
  telemetry: TelemetryStore;
  counters: IngestCounters;
  logger: Logger;
  retryDelayMs: number;
  maxAttempts: number;
  scheduler?: SchedulerLike;
}

export function writeRollups(options: WriteRollupsOptions): OperatorFunction<Rollup[], number> {
  return concatMap((rollups) =>
    defer(() => options.telemetry.writeRollups(rollups)).pipe(
      retry({ count: options.maxAttempts - 1, delay: (_error, attempt) => timer(options.retryDelayMs * attempt, options.scheduler) }),
      map(() => {
        options.counters.rollupsWritten += rollups.length;
        return rollups.length;
      }),
      catchError((error: unknown) => {
        options.counters.rollupWriteFailures += rollups.length;
        options.logger.error({ err: error, rollups: rollups.length }, 'rollup write failed after retries; rollups are missing until recomputed');
        return EMPTY;
      }),
    ),
  );
}
