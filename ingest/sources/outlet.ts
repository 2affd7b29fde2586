/**
 * What both sources share on their way out to the pipeline: the one
 * subscription to `messages$` (messages handed out before it subscribes
 * wait, in order), the in-flight accounting, the `received` counter, and
 * close(), which completes `messages$` once and then refuses further
 * hand-outs. Each message's `ack()` settles it once; later calls do nothing.
 */
import { Observable, type Subscriber } from 'rxjs';
import type { IngestCounters } from '../counters.ts';
import type { InboundMessage, InflightReport } from '../types.ts';
import { InflightTracker } from './inflight.ts';

export class SourceOutlet {
  readonly messages$: Observable<InboundMessage>;
  private waiting: InboundMessage[] = [];
  private subscriber: Subscriber<InboundMessage> | undefined;
  private closed = false;
  private readonly tracker = new InflightTracker();

  constructor(private readonly counters: IngestCounters) {
    this.messages$ = new Observable<InboundMessage>((subscriber) => {
      if (this.subscriber !== undefined) throw new Error('a source has one subscriber, the pipeline');
      this.subscriber = subscriber;
      const queued = this.waiting;
      this.waiting = [];
      for (const message of queued) subscriber.next(message);
      if (this.closed) subscriber.complete();
    });
  }

  /** False once closed: the source must not hand out more (and leaves it unacknowledged). */
  get open(): boolean {
    return !this.closed;
  }

  /** Messages handed out and not yet acknowledged. */
  get inflightCount(): number {
    return this.tracker.count;
  }

  inflight(): InflightReport {
    return this.tracker.report();
  }

  /** Hands a message out; `settle` runs on its first ack(). */
  hand(message: Omit<InboundMessage, 'ack'>, settle: () => void): void {
    this.counters.received++;
    const release = this.tracker.add(message.receivedAtMs);
    const inbound: InboundMessage = {
      ...message,
      ack() {
        if (release()) settle();
      },
    };
    if (this.subscriber !== undefined) this.subscriber.next(inbound);
    else this.waiting.push(inbound);
  }

  /** Completes messages$ (at once, or when the pipeline subscribes). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.subscriber?.complete();
  }
}
