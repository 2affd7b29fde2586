/**
 * In-flight accounting of one source: which messages it handed out and has
 * not had acknowledged, and since when the oldest has waited. Each source
 * owns one; counters only report what it says.
 *
 * Messages are acknowledged almost in order (batches commit in order), so a
 * FIFO with lazy removal gives the oldest in O(1) amortised: an
 * acknowledged entry is marked and dropped once it reaches the head.
 */
import type { InflightReport } from '../types.ts';

interface Entry {
  receivedAtMs: number;
  acked: boolean;
}

export class InflightTracker {
  private readonly queue: Entry[] = [];
  private head = 0;
  private size = 0;

  get count(): number {
    return this.size;
  }

  /** Records a message handed out; returns the function that settles it, once. */
  add(receivedAtMs: number): () => boolean {
    const entry: Entry = { receivedAtMs, acked: false };
    this.queue.push(entry);
    this.size++;
    return () => {
      if (entry.acked) return false;
      entry.acked = true;
      this.size--;
      this.dropSettledHead();
      return true;
    };
  }

  report(): InflightReport {
    this.dropSettledHead();
    const oldest = this.head < this.queue.length ? this.queue[this.head]! : undefined;
    return { count: this.size, oldestReceivedAtMs: oldest ? oldest.receivedAtMs : null };
  }

  private dropSettledHead(): void {
    while (this.head < this.queue.length && this.queue[this.head]!.acked) this.head++;
    // Compact now and then so the array does not grow with every message ever seen.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}
