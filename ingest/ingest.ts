/**
 * Ingest as a running service: the pipeline plus its timers (live aggregates,
 * heartbeat, registry refresh). Lifecycle: `startIngest` subscribes to the
 * source at once; `stop()` first stops the source taking messages, then waits
 * until the pipeline has committed and acknowledged everything in flight and
 * flushed its rollups, then stops the timers.
 */
import { interval, Subscription, type Observable, type SchedulerLike } from 'rxjs';
import type { Logger } from 'pino';
import { aggregateTopic, encodeJson, serviceHealthTopic, type AggregateSnapshot, type ServiceHealth } from '../protocol/index.ts';
import type { DeadLetterStore, Registry, TelemetryStore, TwinStore } from '../store/types.ts';
import type { IngestCounters } from './counters.ts';
import { Directory } from './directory.ts';
import { liveAggregates$ } from './live-aggregates.ts';
import { runPipeline, type PipelineSettings } from './pipeline.ts';
import { BUCKET_MS, bucketStartOf, RollupAccumulator } from './rollup-accumulator.ts';
import { Twin } from './twin.ts';
import type { InboundMessage } from './types.ts';

/** Site aggregates are published every this many live-aggregate ticks. */
const SITE_PUBLISH_EVERY = 5;

export interface IngestSettings extends PipelineSettings {
  rollupLatenessMs: number;
  liveIntervalMs: number;
  liveWindowMs: number;
  heartbeatIntervalMs: number;
  directoryRefreshMs: number;
}

export interface IngestOptions {
  source: { messages$: Observable<InboundMessage>; close(): void };
  registry: Registry;
  telemetry: TelemetryStore;
  twins: TwinStore;
  deadLetters: DeadLetterStore;
  /** Fire-and-forget publish (QoS 0) of live aggregates and heartbeats. */
  publish(topic: string, payload: Buffer, options: { retain: boolean }): void;
  clock: () => number;
  logger: Logger;
  settings: IngestSettings;
  /** Shared with the source, which counts what it received and what is in flight. */
  counters: IngestCounters;
  scheduler?: SchedulerLike;
}

export interface Ingest {
  readonly counters: IngestCounters;
  readonly twin: Twin;
  readonly directory: Directory;
  /** True until the pipeline failed or stopped. */
  running(): boolean;
  /** Latest live aggregates computed (also published). */
  latestAggregates(): readonly AggregateSnapshot[];
  stop(): Promise<void>;
}

export function startIngest(options: IngestOptions): Ingest {
  const { settings, clock, scheduler } = options;
  const logger = options.logger.child({ component: 'ingest' });
  const { counters } = options;
  const directory = new Directory(options.registry);
  const twin = new Twin(options.twins.listDeviceStates());
  const startMs = clock();
  // A device's committed samples are never newer than its saved twin (the
  // batch writer saves twins first), so the twin at start tells which
  // devices may have samples in the start minute that memory lacks.
  const lastTsAtStart = new Map<string, number>();
  for (const state of twin.all()) if (state.lastTs !== null) lastTsAtStart.set(state.deviceId, state.lastTs);
  const accumulator = new RollupAccumulator({
    startMs,
    latenessMs: settings.rollupLatenessMs,
    regionOf: (siteId) => directory.regionOf(siteId),
    deviceCounts: () => directory.deviceCounts(),
    mayHaveEarlierSamples: (deviceId, bucketStartMs) => (lastTsAtStart.get(deviceId) ?? -Infinity) >= bucketStartMs,
  });
  // Minutes that were still open when the process last stopped (or crashed)
  // are recomputed from raw telemetry, which has everything that was acked.
  const repairFromMs = bucketStartOf(startMs - settings.rollupLatenessMs) - BUCKET_MS;
  for (const state of twin.all()) {
    if (state.lastTs === null || state.lastTs < repairFromMs) continue;
    for (let bucket = repairFromMs; bucket <= bucketStartOf(Math.min(state.lastTs, startMs)); bucket += BUCKET_MS) {
      accumulator.markLate(state.deviceId, bucket);
    }
  }

  let running = true;
  let latest: readonly AggregateSnapshot[] = [];
  let failure: Error | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));

  const timers = new Subscription();
  let tick = 0;
  const pipeline = runPipeline(
    options.source.messages$,
    { ...options, directory, twin, accumulator, counters, logger },
    settings,
  ).subscribe({
    error: (error: unknown) => {
      // Stages count and retry their own failures; reaching here is a bug.
      failure = error instanceof Error ? error : new Error(String(error));
      running = false;
      logger.error({ err: error }, 'ingest pipeline failed; messages in flight stay unacknowledged');
      resolveDone();
    },
    complete: () => {
      running = false;
      resolveDone();
    },
  });

  timers.add(
    liveAggregates$({ twin, directory, clock, windowMs: settings.liveWindowMs, intervalMs: settings.liveIntervalMs, scheduler }).subscribe(
      (snapshots) => {
        latest = snapshots;
        // The fleet and regions go out every tick; sites, which are many
        // (one retained message each), every SITE_PUBLISH_EVERY ticks.
        const withSites = tick++ % SITE_PUBLISH_EVERY === 0;
        for (const snapshot of snapshots) {
          if (snapshot.level === 'site' && !withSites) continue;
          options.publish(aggregateTopic(snapshot.level, snapshot.id), encodeJson(snapshot), { retain: true });
          counters.aggregatesPublished++;
        }
      },
    ),
  );
  const publishHeartbeat = (): void => {
    const health: ServiceHealth = {
      service: 'ingest',
      ts: clock(),
      ok: running,
      counters: counters.snapshot(),
      ...(failure ? { detail: failure.message } : {}),
    };
    options.publish(serviceHealthTopic('ingest'), encodeJson(health), { retain: true });
  };
  publishHeartbeat();
  timers.add(interval(settings.heartbeatIntervalMs, scheduler).subscribe(publishHeartbeat));
  timers.add(
    interval(settings.directoryRefreshMs, scheduler).subscribe(() => {
      try {
        directory.refresh();
      } catch (error) {
        logger.warn({ err: error }, 'registry refresh failed; using the previous copy');
      }
    }),
  );

  return {
    counters,
    twin,
    directory,
    running: () => running,
    latestAggregates: () => latest,
    async stop() {
      options.source.close();
      await done;
      pipeline.unsubscribe();
      timers.unsubscribe();
      publishHeartbeatStopped();
    },
  };

  function publishHeartbeatStopped(): void {
    const health: ServiceHealth = { service: 'ingest', ts: clock(), ok: false, detail: 'stopped', counters: counters.snapshot() };
    options.publish(serviceHealthTopic('ingest'), encodeJson(health), { retain: true });
  }
}
