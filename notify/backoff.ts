/**
 * When to try a failed delivery again. Pure.
 *
 * Exponential with equal jitter: the ceiling is
 * `min(maxMs, baseMs × 2^(attempts-1))` and the delay is drawn uniformly
 * from [ceiling/2, ceiling). Equal rather than full jitter so that a
 * receiver that is down is never retried almost at once (full jitter can
 * draw ~0), while retries of many deliveries still spread out instead of
 * arriving together when it comes back. A Retry-After from the receiver is
 * a floor: never earlier than it said.
 */
export interface BackoffInput {
  /** Attempts made so far, the one that just failed included (≥ 1). */
  attempts: number;
  maxAttempts: number;
  nowMs: number;
  /** The receiver's Retry-After, from nowMs. */
  retryAfterMs?: number;
  baseMs: number;
  maxMs: number;
  /** Uniform in [0, 1), like Math.random. */
  random: () => number;
}

/** The time of the next attempt, or null when attempts reached maxAttempts (the delivery is dead). */
export function nextAttemptAtMs(input: BackoffInput): number | null {
  if (input.attempts >= input.maxAttempts) return null;
  const exponent = Math.max(0, input.attempts - 1);
  // 2^exponent overflows to Infinity for absurd attempt counts; min() keeps it at maxMs.
  const ceiling = Math.min(input.maxMs, input.baseMs * 2 ** exponent);
  const r = Math.min(Math.max(input.random(), 0), 1);
  const delay = ceiling / 2 + (ceiling / 2) * r;
  const floor = input.retryAfterMs ?? 0;
  return input.nowMs + Math.ceil(Math.max(delay, floor));
}
