/**
 * The rule engine on streams:
 *
 *   inputs (committed samples, live aggregates) ┐
 *   ruleTicks$ (platform time, for presence)    ┴→ applyRules → storeRuleOutputs → stored transitions
 *
 * applyRules runs the engine on each input and passes on what changed.
 * storeRuleOutputs stores each output in one transaction, in order; a
 * transient store failure is retried with backoff (doubling up to
 * maxRetryDelayMs) while later outputs wait behind it, so signals are never
 * reordered; an output the store refuses deterministically is dropped,
 * reported through onRefused, and the stream goes on.
 */
import { catchError, concatMap, defer, EMPTY, filter, interval, map, of, retry, throwError, timer, type Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { AlertEvent } from '../../protocol/index.ts';
import { isEmptyOutput, type RuleEngine, type RuleInput, type RuleOutput } from './rule-engine.ts';

export function applyRules(engine: RuleEngine): OperatorFunction<RuleInput, RuleOutput> {
  return (input$) =>
    input$.pipe(
      map((input) => engine.step(input)),
      filter((output) => !isEmptyOutput(output)),
    );
}

/** A tick every tickMs carrying the platform time. */
export function ruleTicks$(tickMs: number, clock: () => number, scheduler?: SchedulerLike): Observable<RuleInput> {
  return interval(tickMs, scheduler).pipe(map(() => ({ kind: 'tick' as const, nowMs: clock() })));
}

export interface StoreRuleOutputsOptions {
  /** Stores one output in one transaction; returns the transitions stored. */
  apply(output: RuleOutput): AlertEvent[];
  isTransient(error: unknown): boolean;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  onRetry?(error: unknown, attempt: number): void;
  onRefused?(error: unknown, output: RuleOutput): void;
  scheduler?: SchedulerLike;
}

export function storeRuleOutputs(options: StoreRuleOutputsOptions): OperatorFunction<RuleOutput, AlertEvent[]> {
  return (output$) =>
    output$.pipe(
      concatMap((output) =>
        defer(() => of(options.apply(output))).pipe(
          retry({
            delay: (error: unknown, attempt) => {
              if (!options.isTransient(error)) return throwError(() => error);
              options.onRetry?.(error, attempt);
              return timer(Math.min(options.maxRetryDelayMs, options.retryDelayMs * 2 ** (attempt - 1)), options.scheduler);
            },
          }),
          catchError((error: unknown) => {
            options.onRefused?.(error, output);
            return EMPTY;
          }),
        ),
      ),
    );
}
