/**
 * coalesceLatest in virtual time: a bounded rate per key, the newest value
 * last, keys independent, idle keys forgotten, errors and completion passed on.
 */
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { coalesceLatest } from './coalesce.ts';

const newScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
const keyOf = (v: string) => v[0]!;

describe('coalesceLatest', () => {
  it('passes the first value at once and the newest of a burst when the interval ends', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      // a1 opens a 10 ms interval; a2..a4 arrive within it: only a4 goes out, at 10 ms, and opens the next.
      const source = cold('a 2ms b 2ms c 2ms d 20ms e', { a: 'a1', b: 'a2', c: 'a3', d: 'a4', e: 'a5' });
      expectObservable(source.pipe(coalesceLatest(keyOf, 10, undefined))).toBe('a 9ms d 19ms e', { a: 'a1', d: 'a4', e: 'a5' });
    });
  });

  it('bounds the rate of a key that publishes every millisecond to one per interval', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const letters = 'abcdefghijklmnopqrstuvwxyzABCD';
      const values = Object.fromEntries([...letters].map((letter, i) => [letter, `a${i}`]));
      const marbles = Object.keys(values).join('');
      // 30 values in 30 ms; throttled to 10 ms: a0 at 0, a9 at 10, a19 at 20, a29 at 30.
      expectObservable(cold(marbles, values).pipe(coalesceLatest(keyOf, 10, undefined))).toBe('a 9ms b 9ms c 9ms d', {
        a: 'a0',
        b: 'a10',
        c: 'a20',
        d: 'a29',
      });
    });
  });

  it('coalesces each key on its own', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a b c d', { a: 'a1', b: 'b1', c: 'a2', d: 'b2' });
      expectObservable(source.pipe(coalesceLatest(keyOf, 10, undefined))).toBe('ab 8ms cd', { a: 'a1', b: 'b1', c: 'a2', d: 'b2' });
    });
  });

  it('forgets an idle key, so its next value goes out at once again', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a 99ms b', { a: 'a1', b: 'a2' });
      expectObservable(source.pipe(coalesceLatest(keyOf, 10, undefined, 50))).toBe('a 99ms b', { a: 'a1', b: 'a2' });
    });
  });

  it('passes an error on and completes with the source', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('a #', { a: 'a1' }).pipe(coalesceLatest(keyOf, 10, undefined))).toBe('a #', { a: 'a1' });
      expectObservable(cold('a |', { a: 'a1' }).pipe(coalesceLatest(keyOf, 10, undefined))).toBe('a |', { a: 'a1' });
    });
  });
});
