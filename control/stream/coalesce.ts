/**
 * Coalescing: at most one value per key per `intervalMs`, and always the
 * newest. The first value of a key goes out at once; values arriving within
 * the interval after it are held, and the newest of them goes out when the
 * interval ends (and opens the next one). So a subscriber sees each entity
 * at a bounded rate, whatever the input rate, and never misses its latest
 * state. A key idle for `idleMs` is forgotten (its group completes), so the
 * number of keys held follows what is live, not what was ever seen.
 */
import { groupBy, mergeMap, throttleTime, debounceTime, type OperatorFunction, type SchedulerLike, asyncScheduler } from 'rxjs';

export function coalesceLatest<T>(keyOf: (value: T) => string, intervalMs: number, scheduler: SchedulerLike = asyncScheduler, idleMs = intervalMs * 5): OperatorFunction<T, T> {
  return (source) =>
    source.pipe(
      groupBy(keyOf, { duration: (group) => group.pipe(debounceTime(Math.max(idleMs, intervalMs * 2), scheduler)) }),
      mergeMap((group) => group.pipe(throttleTime(intervalMs, scheduler, { leading: true, trailing: true }))),
    );
}
