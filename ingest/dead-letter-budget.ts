/**
 * How many rejected messages of one device get stored as dead letters: a
 * token bucket per device (or per topic when the publisher is unknown). A
 * device that floods rejects fills its bucket's worth of letters and is
 * then only counted, so it can neither fill the disk nor crowd out the
 * letters of other devices.
 *
 * The map of buckets is bounded: past `maxTracked` keys it starts afresh
 * (every device gets a full bucket again), which bounds memory whatever ids
 * an attacker makes up.
 */
export interface DeadLetterBudgetOptions {
  /** Letters a device may store in a burst. */
  burst: number;
  /** Letters per minute it earns back. */
  perMinute: number;
  maxTracked?: number;
}

interface Bucket {
  tokens: number;
  updatedAtMs: number;
}

export class DeadLetterBudget {
  private buckets = new Map<string, Bucket>();
  private readonly maxTracked: number;

  constructor(private readonly options: DeadLetterBudgetOptions) {
    this.maxTracked = options.maxTracked ?? 100_000;
  }

  /** Takes one letter from `key`'s budget; false when it is spent. */
  take(key: string, nowMs: number): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxTracked) this.buckets = new Map();
      bucket = { tokens: this.options.burst, updatedAtMs: nowMs };
      this.buckets.set(key, bucket);
    } else if (nowMs > bucket.updatedAtMs) {
      bucket.tokens = Math.min(this.options.burst, bucket.tokens + ((nowMs - bucket.updatedAtMs) * this.options.perMinute) / 60_000);
      bucket.updatedAtMs = nowMs;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
