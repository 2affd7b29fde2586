/**
 * Ingest as a running service: the pipeline plus its timers (live aggregates,
 * presence, heartbeat, registry refresh). Lifecycle: `startIngest` subscribes
 * to the source at once; `stop()` first stops the source taking messages,
 * then waits until the pipeline has committed and acknowledged everything in
 * flight and flushed its rollups, but no longer than `shutdownTimeoutMs`:
 * past that (the store is down, say) it gives up, and what was not
 * committed was not acknowledged, so devices send it again. Then it stops
 * the timers.
 *
 * Liveness: the heartbeat says how many messages are in flight, how long
 * the oldest has waited and when the pipeline last committed; it reports
 * the pipeline stalled (ok: false) when messages have waited longer than
 * `stallAfterMs` and nothing was committed in that time.
 */
import { interval, Subscription, type SchedulerLike } from 'rxjs';
import type { Logger } from 'pino';
import { aggregateTopic, encodeJson, serviceHealthTopic, type AggregateSnapshot, type AlertEvent, type AlertRule, type ServiceHealth } from '../protocol/index.ts';
import type { AlertStore, DeadLetterStore, Registry, TelemetryStore, TwinStore } from '../store/types.ts';
import type { IngestCounters } from './counters.ts';
import { DeadLetterBudget } from './dead-letter-budget.ts';
import { Directory } from './directory.ts';
import { liveAggregates$ } from './live-aggregates.ts';
import { runPipeline, type PipelineSettings } from './pipeline.ts';
import { BUCKET_MS, bucketStartOf, RollupAccumulator } from './rollup-accumulator.ts';
import type { PipelineProgress } from './stages/commit-batch.ts';
import { startAlerting, type Alerting } from './rules/alerting.ts';
import type { DevicePresence } from './rules/rule-engine.ts';
import { Twin } from './twin.ts';
import type { IngestSource } from './types.ts';

/** Site aggregates are published every this many live-aggregate ticks. */
const SITE_PUBLISH_EVERY = 5;

export interface IngestSettings extends PipelineSettings {
  rollupLatenessMs: number;
  liveIntervalMs: number;
  liveWindowMs: number;
  heartbeatIntervalMs: number;
  directoryRefreshMs: number;
  /** A connected device silent for this long is stale. */
  staleAfterMs: number;
  /** How often presence is checked for staleness and changed twins are saved. */
  presenceCheckMs: number;
  /** Messages waiting this long with no commit in that time: the pipeline is stalled. */
  stallAfterMs: number;
  /** stop() waits at most this long for in-flight messages to commit. */
  shutdownTimeoutMs: number;
  /** Dead letters one device may store in a burst, and per minute after it. */
  deadLetterBurst: number;
  deadLettersPerMinute: number;
}

export interface IngestOptions {
  source: IngestSource;
  registry: Registry;
  telemetry: TelemetryStore;
  twins: TwinStore;
  deadLetters: DeadLetterStore;
  /** Fire-and-forget publish (QoS 0) of live aggregates and heartbeats. */
  publish(topic: string, payload: Buffer, options: { retain: boolean }): void;
  clock: () => number;
  logger: Logger;
  settings: IngestSettings;
  /** Shared with the source, which counts what it received. */
  counters: IngestCounters;
  /**
   * When the broker ingest reads from started, if known at start (the
   * embedded broker): devices the twin shows connected before that are
   * offline. Over MQTT the broker's heartbeat and events say it.
   */
  brokerStartedAtMs?: number;
  /** Counters of workers that run beside ingest (the notifier), added to its heartbeat. */
  heartbeatCounters?: () => Record<string, number>;
  /** Alert rules evaluated on committed samples, live aggregates and presence; none when absent. */
  alerting?: {
    rules: readonly AlertRule[];
    alerts: AlertStore;
    /** How often presence rules are checked. */
    tickMs: number;
    /** After start, presence rules do not fire and aggregate rules wait this long (devices reconnecting). */
    startupGraceMs: number;
    /** Told of every alert transition stored (wakes the process's notifier). */
    onEvents?(events: readonly AlertEvent[]): void;
  };
  scheduler?: SchedulerLike;
}

export interface Ingest {
  readonly counters: IngestCounters;
  readonly twin: Twin;
  readonly directory: Directory;
  /** True until the pipeline failed or stopped. */
  running(): boolean;
  /** In flight, oldest unacknowledged age, last commit, stalled: what the heartbeat reports. */
  liveness(): PipelineLiveness;
  /** Latest live aggregates computed (also published). */
  latestAggregates(): readonly AggregateSnapshot[];
  stop(): Promise<void>;
}

export interface PipelineLiveness {
  inflight: number;
  oldestUnackedAgeMs: number | null;
  lastCommitAtMs: number | null;
  stalled: boolean;
}

export function startIngest(options: IngestOptions): Ingest {
  const { settings, clock, scheduler } = options;
  const logger = options.logger.child({ component: 'ingest' });
  const { counters } = options;
  const directory = new Directory(options.registry);
  const twin = new Twin(options.twins.listDeviceStates(), { maxMetricsPerDevice: settings.maxMetricsPerDevice });
  if (options.brokerStartedAtMs !== undefined) twin.applyBrokerStart(options.brokerStartedAtMs);
  const progress: PipelineProgress = { lastCommitAtMs: null };
  const deadLetterBudget = new DeadLetterBudget({ burst: settings.deadLetterBurst, perMinute: settings.deadLettersPerMinute });
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

  const alerting: Alerting | undefined = options.alerting
    ? startAlerting({
        rules: options.alerting.rules,
        alerts: options.alerting.alerts,
        deps: { regionOf: (siteId) => directory.regionOf(siteId), presences: () => presencesOf(directory, twin) },
        counters,
        clock,
        logger: logger.child({ component: 'alerting' }),
        tickMs: options.alerting.tickMs,
        startupGraceMs: options.alerting.startupGraceMs,
        retryDelayMs: settings.writeRetryDelayMs,
        stopTimeoutMs: settings.shutdownTimeoutMs,
        ...(options.alerting.onEvents ? { onEvents: options.alerting.onEvents } : {}),
        scheduler,
      })
    : undefined;

  let running = true;
  let latest: readonly AggregateSnapshot[] = [];
  let failure: Error | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));

  const timers = new Subscription();
  let tick = 0;
  const pipeline = runPipeline(
    options.source.messages$,
    { ...options, directory, twin, accumulator, counters, logger, progress, deadLetterBudget, ...(alerting ? { rules: alerting.input } : {}) },
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
        alerting?.input({ kind: 'aggregates', snapshots });
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
  const liveness = (): PipelineLiveness => {
    const nowMs = clock();
    const { count, oldestReceivedAtMs } = options.source.inflight();
    const oldestUnackedAgeMs = oldestReceivedAtMs === null ? null : Math.max(0, nowMs - oldestReceivedAtMs);
    const lastCommitAtMs = progress.lastCommitAtMs;
    const stalled =
      oldestUnackedAgeMs !== null &&
      oldestUnackedAgeMs > settings.stallAfterMs &&
      (lastCommitAtMs === null || nowMs - lastCommitAtMs > settings.stallAfterMs);
    return { inflight: count, oldestUnackedAgeMs, lastCommitAtMs, stalled };
  };
  let reportedStall = false;
  const publishHeartbeat = (): void => {
    const pipeline = liveness();
    if (pipeline.stalled !== reportedStall) {
      reportedStall = pipeline.stalled;
      if (pipeline.stalled) logger.error(pipeline, 'ingest pipeline stalled: messages wait and nothing was committed');
      else logger.info(pipeline, 'ingest pipeline committing again');
    }
    const detail = failure?.message ?? (pipeline.stalled ? `stalled: ${pipeline.inflight} messages waiting, oldest for ${pipeline.oldestUnackedAgeMs} ms` : undefined);
    const health: ServiceHealth = {
      service: 'ingest',
      ts: clock(),
      ok: running && !pipeline.stalled,
      startedAtMs: startMs,
      pipeline,
      counters: { ...counters.snapshot(), ...options.heartbeatCounters?.(), inflight: pipeline.inflight },
      ...(detail !== undefined ? { detail } : {}),
    };
    options.publish(serviceHealthTopic('ingest'), encodeJson(health), { retain: true });
  };
  publishHeartbeat();
  timers.add(interval(settings.heartbeatIntervalMs, scheduler).subscribe(publishHeartbeat));
  timers.add(
    interval(settings.presenceCheckMs, scheduler).subscribe(() => {
      counters.devicesTurnedStale += twin.markStale(clock(), settings.staleAfterMs);
      // Presence changes with no data behind them (stale, broker restarts,
      // devices that went quiet) are saved here, not with a batch.
      const states = twin.takeDirty();
      if (states.length === 0) return;
      try {
        options.twins.saveDeviceStates(states);
      } catch (error) {
        twin.markDirty(states.map((s) => s.deviceId));
        logger.warn({ err: error, devices: states.length }, 'saving device presence failed; retried at the next check');
      }
    }),
  );
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
    liveness,
    latestAggregates: () => latest,
    async stop() {
      options.source.close();
      let timeout: ReturnType<typeof setTimeout> | undefined;
      const gaveUp = await Promise.race([
        done.then(() => false),
        new Promise<boolean>((resolve) => (timeout = setTimeout(() => resolve(true), settings.shutdownTimeoutMs))),
      ]);
      clearTimeout(timeout);
      if (gaveUp) {
        const { count } = options.source.inflight();
        logger.warn({ inflight: count, shutdownTimeoutMs: settings.shutdownTimeoutMs }, 'stopped before every message was committed; they were not acknowledged and will be sent again');
      }
      pipeline.unsubscribe();
      timers.unsubscribe();
      await alerting?.stop();
      running = false;
      publishHeartbeatStopped();
    },
  };

  function publishHeartbeatStopped(): void {
    const health: ServiceHealth = { service: 'ingest', ts: clock(), ok: false, detail: 'stopped', counters: counters.snapshot() };
    options.publish(serviceHealthTopic('ingest'), encodeJson(health), { retain: true });
  }
}

/** Every active device with its presence as the twin has it (never seen: offline, since unknown). */
function* presencesOf(directory: Directory, twin: Twin): Iterable<DevicePresence> {
  for (const device of directory.activeDevices()) {
    const state = twin.get(device.id);
    yield { device, presence: state?.presence ?? 'offline', sinceMs: state?.presenceSinceMs ?? null };
  }
}
