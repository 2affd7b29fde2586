/**
 * batchWrite: groups items into batches (by size and by time) and commits
 * each batch, one at a time and in order, through `commit`, which
 * acknowledges what it committed. What it does when a commit fails depends
 * on the error, as the store classifies it:
 *
 * - transient (the store is busy, locked, full or unreachable): the same
 *   batch is retried with exponential backoff, for as long as it takes.
 *   Nothing is acknowledged meanwhile, and the sources stop taking new
 *   messages once their in-flight bound is reached: that is the pipeline's
 *   backpressure.
 * - deterministic (the store refuses something in the batch and will refuse
 *   it again): the batch is split in halves, each committed on its own, in
 *   order, recursively, until the item the store refuses is alone; that one
 *   goes to `isolate` (which dead-letters and acknowledges it). Every other
 *   item of the batch is committed. A poison item costs about 2·log2(n)
 *   extra commits, never a stall.
 *
 * Emits whatever each successful commit or isolation returns, in batch
 * order. Completes after the last batch (the partial one included) is
 * committed when its input completes; unsubscribing cancels the batch timer
 * and any pending retry.
 */
import {
  bufferTime,
  catchError,
  concat,
  concatMap,
  defer,
  filter,
  retry,
  throwError,
  timer,
  type Observable,
  type ObservableInput,
  type OperatorFunction,
  type SchedulerLike,
} from 'rxjs';

export interface BatchWriteOptions<T, R> {
  /** Commits the whole batch and acknowledges it; throws (or rejects) when it could not. */
  commit(batch: readonly T[]): ObservableInput<R>;
  /** Handles an item the store refuses on its own (dead-letters and acknowledges it). */
  isolate(item: T, error: unknown): ObservableInput<R>;
  /** True for a failure worth retrying as it is (busy, locked, disk full, I/O). */
  isTransient(error: unknown): boolean;
  /** Told about every transient failure before its retry. */
  onRetry?(error: unknown, attempt: number, delayMs: number, batchSize: number): void;
  /** Told when a batch is split because the store refused something in it. */
  onSplit?(error: unknown, batchSize: number): void;
  /** A batch is written when it holds this many items… */
  maxBatchMessages: number;
  /** …or when the batch window (this long) ends. */
  maxBatchDelayMs: number;
  /** First retry delay after a transient failure; doubles up to maxRetryDelayMs. */
  retryDelayMs: number;
  maxRetryDelayMs?: number;
  scheduler?: SchedulerLike;
}

const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;

export function batchWrite<T, R>(options: BatchWriteOptions<T, R>): OperatorFunction<T, R> {
  return (items$) =>
    items$.pipe(
      bufferTime(options.maxBatchDelayMs, null, options.maxBatchMessages, options.scheduler),
      filter((batch) => batch.length > 0),
      concatMap((batch) => commitIsolating(batch, options)),
    );
}

/** Retries transient failures of `attempt` with backoff; lets other failures through. */
function retryTransient<R>(attempt: () => ObservableInput<R>, size: number, options: BatchWriteOptions<unknown, R>): Observable<R> {
  const maxDelayMs = options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS;
  return defer(attempt).pipe(
    retry({
      delay: (error: unknown, count) => {
        if (!options.isTransient(error)) return throwError(() => error);
        const delayMs = Math.min(options.retryDelayMs * 2 ** (count - 1), maxDelayMs);
        options.onRetry?.(error, count, delayMs, size);
        return timer(delayMs, options.scheduler);
      },
    }),
  );
}

function commitIsolating<T, R>(batch: readonly T[], options: BatchWriteOptions<T, R>): Observable<R> {
  return retryTransient(() => options.commit(batch), batch.length, options).pipe(
    catchError((error: unknown) => {
      if (batch.length === 1) return retryTransient(() => options.isolate(batch[0]!, error), 1, options);
      options.onSplit?.(error, batch.length);
      const half = Math.ceil(batch.length / 2);
      return concat(commitIsolating(batch.slice(0, half), options), commitIsolating(batch.slice(half), options));
    }),
  );
}
