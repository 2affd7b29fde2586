/**
 * batchWrite's time and failure logic in virtual time (RxJS TestScheduler):
 * batching by size and by time, the final flush, a poison item isolated
 * while the rest of its batch commits in order, transient failures retried
 * with backoff and nothing acknowledged meanwhile, and unsubscription
 * cancelling timers. The commit here is a scripted stand-in for the store
 * glue (commit-batch.ts), which the pipeline tests run on a real file.
 */
import { of, throwError, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { batchWrite, type BatchWriteOptions } from './batch-write.ts';

class Transient extends Error {}
class Refused extends Error {}

interface Script {
  /** Items the store refuses deterministically. */
  poison?: string[];
  /** Transient failures before the first success. */
  transientFailures?: number;
}

function createHarness(scheduler: TestScheduler, script: Script = {}) {
  const attempts: string[] = [];
  const acked: Array<{ at: number; items: string }> = [];
  let transientLeft = script.transientFailures ?? 0;
  const options: BatchWriteOptions<string, string> = {
    commit(batch): Observable<string> {
      const items = batch.join('');
      attempts.push(items);
      if (transientLeft > 0) {
        transientLeft--;
        return throwError(() => new Transient('busy'));
      }
      if (batch.some((item) => script.poison?.includes(item))) return throwError(() => new Refused('refused'));
      acked.push({ at: scheduler.now(), items });
      return of(items);
    },
    isolate(item) {
      acked.push({ at: scheduler.now(), items: `dead:${item}` });
      return of(`dead:${item}`);
    },
    isTransient: (error) => error instanceof Transient,
    maxBatchMessages: 3,
    maxBatchDelayMs: 10,
    retryDelayMs: 10,
    maxRetryDelayMs: 40,
    scheduler,
  };
  return { options, attempts, acked };
}

const newScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('batchWrite (marbles)', () => {
  it('writes a batch as soon as it is full, the rest when its window ends', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const { options } = createHarness(scheduler);
      const input = cold<string>('(abcd) 30ms |');
      // a, b, c fill a batch at once; d waits for the 10 ms window.
      expectObservable(input.pipe(batchWrite(options))).toBe('x 9ms y 25ms |', { x: 'abc', y: 'd' });
    });
  });

  it('writes partial batches by time and flushes the last one on completion', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const { options } = createHarness(scheduler);
      const input = cold<string>('a 14ms b 2ms |');
      expectObservable(input.pipe(batchWrite(options))).toBe('10ms x 7ms (y|)', { x: 'a', y: 'b' });
    });
  });

  it('isolates a poison item by splitting its batch; the others commit, in order', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, flush }) => {
      const harness = createHarness(scheduler, { poison: ['x'] });
      harness.options.maxBatchMessages = 5;
      const input = cold<string>('(abxcd) 20ms |');
      expectObservable(input.pipe(batchWrite(harness.options))).toBe('(pqr) 22ms |', { p: 'ab', q: 'dead:x', r: 'cd' });
      flush();
      // Whole batch, its first half (refused), a and b, x alone, then c and d.
      expect(harness.attempts).toEqual(['abxcd', 'abx', 'ab', 'x', 'cd']);
      expect(harness.acked.map((a) => a.items)).toEqual(['ab', 'dead:x', 'cd']);
    });
  });

  it('retries a transient failure with doubling backoff and acknowledges nothing meanwhile', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, flush }) => {
      const harness = createHarness(scheduler, { transientFailures: 3 });
      const retries: number[] = [];
      harness.options.onRetry = (_error, _attempt, delayMs) => retries.push(delayMs);
      const input = cold<string>('(abc) 100ms |');
      // Fails at 0, 10 and 30; succeeds at 0 + 10 + 20 + 40 = 70.
      expectObservable(input.pipe(batchWrite(harness.options))).toBe('70ms x 34ms |', { x: 'abc' });
      flush();
      expect(retries).toEqual([10, 20, 40]);
      expect(harness.attempts).toEqual(['abc', 'abc', 'abc', 'abc']);
      expect(harness.acked).toEqual([{ at: 70, items: 'abc' }]);
    });
  });

  it('keeps later batches behind a batch that is being retried', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const harness = createHarness(scheduler, { transientFailures: 1 });
      const input = cold<string>('(abcdef) 50ms |');
      expectObservable(input.pipe(batchWrite(harness.options))).toBe('10ms (xy) 44ms |', { x: 'abc', y: 'def' });
    });
  });

  it('cancels the batch timer and pending retries on unsubscribe', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable, flush }) => {
      const harness = createHarness(scheduler, { transientFailures: 100 });
      const input = cold<string>('(abc) 1000ms |');
      expectObservable(input.pipe(batchWrite(harness.options)), '^ 25ms !').toBe('');
      flush();
      // Attempts at 0, 10 (after 10 ms) and 20 (after 20 ms would be 30: cancelled at 25).
      expect(harness.attempts).toHaveLength(2);
      expect(harness.acked).toEqual([]);
    });
  });

  it('fails the stream when even isolating an item fails deterministically', () => {
    const scheduler = newScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const harness = createHarness(scheduler, { poison: ['x'] });
      harness.options.isolate = () => throwError(() => new Refused('no dead letter either'));
      const input = cold<string>('x 20ms |');
      expectObservable(input.pipe(batchWrite(harness.options))).toBe('10ms #', undefined, new Refused('no dead letter either'));
    });
  });
});
