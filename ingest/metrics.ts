/**
 * The ingest pipeline's Prometheus metrics, read at scrape time from the
 * counters it keeps and from its liveness (collect callbacks): nothing is
 * added per message or per batch. Labels are bounded: reject reasons and
 * store operations, never a device or site id.
 *
 * The pipeline does not time its commits nor keep batch sizes, so there is
 * no latency histogram: the mean batch is
 * `rate(vpp_ingest_samples_committed_total) / rate(vpp_ingest_batches_committed_total)`,
 * and a pipeline that stops committing shows in the oldest unacknowledged
 * age and `vpp_ingest_stalled`.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { IngestCounters } from './counters.ts';
import type { PipelineLiveness } from './ingest.ts';
import type { RejectReason } from './types.ts';

/** Every reject reason (the compiler keeps it complete), so each has a series from the start. */
const REJECT_REASONS: Record<RejectReason, true> = {
  'unexpected-topic': true,
  'wrong-client': true,
  'not-json': true,
  schema: true,
  'unknown-device': true,
  'absurd-value': true,
  'future-timestamp': true,
  'stale-timestamp': true,
  'retained-telemetry': true,
  'too-many-metrics': true,
  'store-refused': true,
};

type NumericCounter = {
  [K in keyof IngestCounters]: IngestCounters[K] extends number ? K : never;
}[keyof IngestCounters];

/** Unlabelled counters: metric name (without `vpp_ingest_`, `_total`) → counter, help. */
const COUNTERS: ReadonlyArray<readonly [string, NumericCounter, string]> = [
  ['messages_received', 'received', 'messages received from the source (telemetry, status, presence)'],
  ['messages_accepted', 'acceptedMessages', 'telemetry messages accepted'],
  ['samples_accepted', 'acceptedSamples', 'telemetry samples accepted (a buffered message holds several)'],
  ['status_messages', 'statusMessages', 'status messages applied'],
  ['presence_events', 'presenceEvents', 'connection events of the broker applied to presence'],
  ['broker_heartbeats', 'brokerHeartbeats', 'heartbeats of the broker received'],
  ['duplicate_samples', 'duplicateSamples', 'samples already stored (redeliveries), written again harmlessly'],
  ['batches_committed', 'batchesCommitted', 'batches committed to the store'],
  ['samples_committed', 'samplesCommitted', 'samples committed to the store'],
  ['batch_splits', 'batchSplits', 'batches split because the store refused something in them'],
  ['dead_letters_suppressed', 'deadLettersSuppressed', 'rejected messages only counted, their device’s dead-letter budget being spent'],
  ['dead_letters_lost', 'deadLettersLost', 'rejected messages whose dead letter the store refused too'],
  ['devices_turned_stale', 'devicesTurnedStale', 'online devices turned stale (connected, silent too long)'],
  ['rollups_written', 'rollupsWritten', 'rollup rows written'],
  ['device_minutes_recomputed', 'deviceMinutesRecomputed', 'device minutes rolled up again from the store'],
  ['aggregates_published', 'aggregatesPublished', 'live aggregates published'],
  ['alert_signals', 'alertSignals', 'rule signals (fire, clear) handed to the alert store'],
  ['alert_transitions', 'alertTransitions', 'alert transitions stored'],
  ['alert_outputs_refused', 'alertOutputsRefused', 'rule outputs the alert store refused (lost)'],
];

/** Store failures (each retried), by operation: the `operation` label of vpp_ingest_store_errors_total. */
const STORE_ERRORS = {
  telemetry: 'writeFailures',
  rollups: 'rollupWriteFailures',
  alerts: 'alertWriteFailures',
} as const satisfies Record<string, NumericCounter>;

export interface IngestMetricsSource {
  readonly counters: IngestCounters;
  liveness(): PipelineLiveness;
  running(): boolean;
}

/**
 * Registers the pipeline's metrics on `registry`, read from `ingest` at each
 * scrape. Once per registry (names are unique in one).
 */
export function registerIngestMetrics(registry: Registry, ingest: IngestMetricsSource): void {
  const { counters } = ingest;
  const batchSamples = new Histogram({
    name: 'vpp_ingest_batch_samples',
    help: 'Ingest: samples written per committed batch.',
    buckets: [1, 10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000],
    registers: [registry],
  });
  const commitSeconds = new Histogram({
    name: 'vpp_ingest_commit_duration_seconds',
    help: 'Ingest: how long committing a batch took (store write, dead letters, twins), until its messages are acknowledged.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  counters.onBatchCommitted = (samples, seconds) => {
    batchSamples.observe(samples);
    commitSeconds.observe(seconds);
  };
  for (const [name, field, help] of COUNTERS) {
    new Counter({
      name: `vpp_ingest_${name}_total`,
      help: `Ingest: ${help}.`,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(counters[field]);
      },
    });
  }
  new Counter({
    name: 'vpp_ingest_messages_rejected_total',
    help: 'Ingest: messages rejected, by reason (dead-lettered, or only counted once the device’s dead-letter budget is spent).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const reason of Object.keys(REJECT_REASONS) as RejectReason[]) this.inc({ reason }, counters.rejected.get(reason) ?? 0);
    },
  });
  new Counter({
    name: 'vpp_ingest_store_errors_total',
    help: 'Ingest: transient store failures, each retried, by operation (telemetry batches, rollups, alerts).',
    labelNames: ['operation'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [operation, field] of Object.entries(STORE_ERRORS)) this.inc({ operation }, counters[field]);
    },
  });
  new Gauge({
    name: 'vpp_ingest_inflight_messages',
    help: 'Ingest: messages received and not acknowledged yet (bounded by VPP_INGEST_MAX_INFLIGHT).',
    registers: [registry],
    collect() {
      this.set(ingest.liveness().inflight);
    },
  });
  new Gauge({
    name: 'vpp_ingest_oldest_unacked_age_seconds',
    help: 'Ingest: age of the oldest message not acknowledged yet; 0 when none waits.',
    registers: [registry],
    collect() {
      this.set((ingest.liveness().oldestUnackedAgeMs ?? 0) / 1_000);
    },
  });
  new Gauge({
    name: 'vpp_ingest_last_commit_timestamp_seconds',
    help: 'Ingest: when the pipeline last committed a batch (Unix time); 0 before the first commit.',
    registers: [registry],
    collect() {
      this.set((ingest.liveness().lastCommitAtMs ?? 0) / 1_000);
    },
  });
  new Gauge({
    name: 'vpp_ingest_rollup_last_minute_timestamp_seconds',
    help: 'Ingest: start of the newest minute rolled up (Unix time); 0 before the first. Rollup lag: time() minus it.',
    registers: [registry],
    collect() {
      this.set(counters.lastRollupMinuteMs / 1_000);
    },
  });
  new Gauge({
    name: 'vpp_ingest_stalled',
    help: 'Ingest: 1 when messages wait longer than VPP_INGEST_STALL_AFTER_MS and nothing was committed meanwhile, else 0.',
    registers: [registry],
    collect() {
      this.set(ingest.liveness().stalled ? 1 : 0);
    },
  });
  new Gauge({
    name: 'vpp_ingest_running',
    help: 'Ingest: 1 while the pipeline runs, 0 once it failed or stopped.',
    registers: [registry],
    collect() {
      this.set(ingest.running() ? 1 : 0);
    },
  });
}
