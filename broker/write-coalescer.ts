/**
 * Coalesces what is written to each connection during one synchronous run
 * of code into one write per connection.
 *
 * When the tap acknowledges a committed batch, it calls `done` for thousands
 * of publishes in one loop, and aedes writes each PUBACK at once, in two
 * small writes (fixed header, then message id): two system calls per
 * message. Holding a connection corks its socket until the current run of
 * code ends (process.nextTick), so the PUBACKs of a batch leave as one
 * writev per connection.
 */
import type { Duplex } from 'node:stream';

export class WriteCoalescer {
  private readonly held = new Set<Duplex>();
  private scheduled = false;

  /** Corks `stream` (once) until the current synchronous run of code has ended. */
  hold(stream: Duplex): void {
    if (this.held.has(stream)) return;
    stream.cork();
    this.held.add(stream);
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => this.release());
  }

  private release(): void {
    this.scheduled = false;
    for (const stream of this.held) stream.uncork();
    this.held.clear();
  }
}
