import { describe, expect, it } from 'vitest';
import { nextAttemptAtMs } from './backoff.ts';

const base = { maxAttempts: 12, nowMs: 1_000_000, baseMs: 1_000, maxMs: 300_000 };

describe('nextAttemptAtMs', () => {
  it('doubles the ceiling per attempt, the delay drawn from [ceiling/2, ceiling) (equal jitter)', () => {
    for (const [attempts, ceiling] of [
      [1, 1_000],
      [2, 2_000],
      [3, 4_000],
      [5, 16_000],
    ] as const) {
      expect(nextAttemptAtMs({ ...base, attempts, random: () => 0 })).toBe(base.nowMs + ceiling / 2);
      expect(nextAttemptAtMs({ ...base, attempts, random: () => 0.5 })).toBe(base.nowMs + (ceiling * 3) / 4);
      const top = nextAttemptAtMs({ ...base, attempts, random: () => 0.999999 })!;
      expect(top).toBeLessThanOrEqual(base.nowMs + ceiling);
      expect(top).toBeGreaterThan(base.nowMs + ceiling * 0.99);
    }
  });

  it('caps the ceiling at maxMs', () => {
    expect(nextAttemptAtMs({ ...base, attempts: 10, random: () => 0.5 })).toBe(base.nowMs + 225_000);
    expect(nextAttemptAtMs({ ...base, attempts: 11, maxAttempts: 2_000, random: () => 0.5 })).toBe(base.nowMs + 225_000);
    // 2^1999 is Infinity: still the cap.
    expect(nextAttemptAtMs({ ...base, attempts: 1_999, maxAttempts: 2_000, random: () => 0.5 })).toBe(base.nowMs + 225_000);
  });

  it('never schedules earlier than Retry-After', () => {
    expect(nextAttemptAtMs({ ...base, attempts: 1, retryAfterMs: 7_000, random: () => 0.9 })).toBe(base.nowMs + 7_000);
    // A Retry-After shorter than the backoff does not make it earlier.
    expect(nextAttemptAtMs({ ...base, attempts: 6, retryAfterMs: 1_000, random: () => 0 })).toBe(base.nowMs + 16_000);
    // Nor is it cut by maxMs: the receiver said not before.
    expect(nextAttemptAtMs({ ...base, attempts: 1, retryAfterMs: 600_000, random: () => 0 })).toBe(base.nowMs + 600_000);
  });

  it('returns null once the attempts reach maxAttempts (dead)', () => {
    expect(nextAttemptAtMs({ ...base, attempts: 11, random: () => 0 })).not.toBeNull();
    expect(nextAttemptAtMs({ ...base, attempts: 12, random: () => 0 })).toBeNull();
    expect(nextAttemptAtMs({ ...base, attempts: 13, random: () => 0 })).toBeNull();
    expect(nextAttemptAtMs({ ...base, attempts: 1, maxAttempts: 1, random: () => 0 })).toBeNull();
  });

  it('returns whole milliseconds, within bounds for any random draw', () => {
    for (let i = 0; i < 1_000; i++) {
      const attempts = 1 + (i % 11);
      const at = nextAttemptAtMs({ ...base, attempts, random: Math.random })!;
      const ceiling = Math.min(base.maxMs, base.baseMs * 2 ** (attempts - 1));
      expect(Number.isInteger(at)).toBe(true);
      expect(at - base.nowMs).toBeGreaterThanOrEqual(ceiling / 2);
      expect(at - base.nowMs).toBeLessThanOrEqual(ceiling);
    }
  });
});
