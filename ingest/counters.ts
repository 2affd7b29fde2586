/**
 * Counters of the ingest pipeline: what it received, what it accepted, and
 * what it rejected or failed to do, by reason. Plain numbers incremented on
 * the hot path; read by the heartbeat and the benchmarks.
 */
import type { RejectReason } from './types.ts';

export class IngestCounters {
  received = 0;
  acceptedMessages = 0;
  acceptedSamples = 0;
  statusMessages = 0;
  /** The broker's connection events applied to presence. */
  presenceEvents = 0;
  /** The broker's heartbeats received (each tells which broker run is current). */
  brokerHeartbeats = 0;
  duplicateSamples = 0;
  batchesCommitted = 0;
  samplesCommitted = 0;
  /** Transient store failures, each followed by a retry of the same batch. */
  writeFailures = 0;
  /** Batches split in halves because the store refused something in them. */
  batchSplits = 0;
  /** Rejections only counted, their device's dead-letter budget being spent. */
  deadLettersSuppressed = 0;
  /** Messages whose dead letter the store refused too; acknowledged and counted only. */
  deadLettersLost = 0;
  /** Online devices turned stale (connected, silent too long). */
  devicesTurnedStale = 0;
  rollupsWritten = 0;
  /** Start of the newest minute a rollup was written for (ms since the epoch), 0 before the first. */
  lastRollupMinuteMs = 0;
  rollupWriteFailures = 0;
  /** Device minutes rolled up again from the store (late samples, minutes around a restart). */
  deviceMinutesRecomputed = 0;
  aggregatesPublished = 0;
  /** Rule signals (fire, clear) handed to the alert store. */
  alertSignals = 0;
  /** Alert transitions the store made of them (and of removed rules). */
  alertTransitions = 0;
  /** Transient alert store failures, each retried. */
  alertWriteFailures = 0;
  /** Rule outputs the alert store refused; lost. */
  alertOutputsRefused = 0;
  readonly rejected = new Map<RejectReason, number>();
  /**
   * Told once per committed batch with its samples and how long the commit
   * took (store write, dead letters, twins): metrics record them as
   * histograms. Per batch, never per message.
   */
  onBatchCommitted: ((samples: number, seconds: number) => void) | undefined = undefined;

  reject(reason: RejectReason): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
  }

  rejectedTotal(): number {
    let total = 0;
    for (const n of this.rejected.values()) total += n;
    return total;
  }

  /** A flat snapshot of every counter, e.g. `{ received: 10, rejected: 2, 'rejected.not-json': 2, … }`. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, value] of Object.entries(this)) if (typeof value === 'number') out[name] = value;
    out.rejected = this.rejectedTotal();
    for (const [reason, n] of this.rejected) out[`rejected.${reason}`] = n;
    return out;
  }
}
