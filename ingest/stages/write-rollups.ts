/**
 * writeRollups: stores rollups, one write at a time; a failed write is retried
 * with backoff (rollups can always be recomputed from raw telemetry, so the
 * retry is bounded: after the last attempt the rows are counted as failed).
 *
 * When a minute closes, a large fleet yields tens of thousands of rows (and
 * the store upserts each into its coarser tiers too). They are written in
 * chunks with a turn of the event loop between them, so that telemetry
 * batches and PUBACKs are not held up behind one long transaction.
 */
import { catchError, concatMap, defer, EMPTY, from, map, retry, timer, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { Logger } from 'pino';
import type { Rollup, TelemetryStore } from '../../store/types.ts';
import type { IngestCounters } from '../counters.ts';

export interface WriteRollupsOptions {
  telemetry: TelemetryStore;
  counters: IngestCounters;
  logger: Logger;
  retryDelayMs: number;
  maxAttempts: number;
  /** Most rows per store write. */
  chunkRows?: number;
  scheduler?: SchedulerLike;
}

const DEFAULT_CHUNK_ROWS = 2_000;

function chunksOf<T>(rows: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < rows.length; i += size) chunks.push(rows.slice(i, i + size));
  return chunks;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export function writeRollups(options: WriteRollupsOptions): OperatorFunction<Rollup[], number> {
  const chunkRows = options.chunkRows ?? DEFAULT_CHUNK_ROWS;
  return concatMap((rollups) =>
    from(chunksOf(rollups, chunkRows)).pipe(
      concatMap((chunk, index) =>
        defer(async () => {
          if (index > 0) await nextTurn();
          await options.telemetry.writeRollups(chunk);
        }).pipe(
          retry({ count: options.maxAttempts - 1, delay: (_error, attempt) => timer(options.retryDelayMs * attempt, options.scheduler) }),
          map(() => {
            options.counters.rollupsWritten += chunk.length;
            for (const rollup of chunk) {
              if (rollup.bucketStartMs > options.counters.lastRollupMinuteMs) options.counters.lastRollupMinuteMs = rollup.bucketStartMs;
            }
            return chunk.length;
          }),
          catchError((error: unknown) => {
            options.counters.rollupWriteFailures += chunk.length;
            options.logger.error({ err: error, rollups: chunk.length }, 'rollup write failed after retries; rollups are missing until recomputed');
            return EMPTY;
          }),
        ),
      ),
    ),
  );
}
