/**
 * Control's Prometheus metrics, read at scrape time: the live stream's hub
 * figures (what GET /api/v1/stream/stats shows) and what the live view
 * took from the broker's retained topics. Labels are bounded (rejection
 * reasons only).
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LiveViewRejection, LiveViewStats } from './live-view.ts';
import type { LiveStream } from './stream/index.ts';
import type { StreamStats } from './stream/hub.ts';

/** The live stream of each app built by buildControlApp (which records it), for its metrics. */
const liveStreams = new WeakMap<FastifyInstance, LiveStream>();

export function rememberLiveStream(app: FastifyInstance, stream: LiveStream): void {
  liveStreams.set(app, stream);
}

const LIVE_VIEW_REJECTIONS: Record<LiveViewRejection, true> = { 'not-json': true, schema: true, 'topic-mismatch': true, 'unknown-topic': true, stale: true };

type StreamFigures = StreamStats & { failedReads: number };

/** Hub counters: metric name (without `vpp_stream_`, `_total`) → figure, help. */
const STREAM_COUNTERS: ReadonlyArray<readonly [string, keyof StreamFigures, string]> = [
  ['events_published', 'published', 'events published (each once, whatever the number of clients)'],
  ['frames_written', 'framesWritten', 'frames written to clients (events and heartbeats)'],
  ['bytes_written', 'bytesWritten', 'bytes written to clients'],
  ['connections', 'connected', 'connections opened'],
  ['connections_resumed', 'resumed', 'connections that came with a last event id'],
  ['resets', 'resets', 'topics that could not be resumed without a gap'],
  ['clients_dropped_slow', 'droppedSlow', 'clients dropped because they did not read fast enough'],
  ['connections_refused_full', 'refusedFull', 'connections refused at VPP_STREAM_MAX_CLIENTS'],
  ['connections_refused_per_token', 'refusedPerOwner', 'connections refused at VPP_STREAM_MAX_CLIENTS_PER_TOKEN'],
  ['store_read_failures', 'failedReads', 'reads of the stores for a topic that failed (retried at the next tick)'],
];

export interface ControlMetricsSource {
  /** The app from buildControlApp, whose live stream is measured. */
  app: FastifyInstance;
  live: { stats(): LiveViewStats };
}

/**
 * Registers the live stream's and the live view's metrics on `registry`.
 * Throws when `app` was not built by buildControlApp. Once per registry.
 */
export function registerControlMetrics(registry: Registry, source: ControlMetricsSource): void {
  const stream = liveStreams.get(source.app);
  if (!stream) throw new Error('registerControlMetrics: the app was not built by buildControlApp');
  const figures = (): StreamFigures => ({ ...stream.hub.stats(), failedReads: stream.sources.failures() });
  new Gauge({
    name: 'vpp_stream_clients',
    help: 'Live stream (SSE): clients connected now.',
    registers: [registry],
    collect() {
      this.set(stream.hub.stats().clients);
    },
  });
  new Gauge({
    name: 'vpp_stream_topics',
    help: 'Live stream (SSE): topics watched now or within their grace period.',
    registers: [registry],
    collect() {
      this.set(stream.hub.stats().topics);
    },
  });
  for (const [name, field, help] of STREAM_COUNTERS) {
    new Counter({
      name: `vpp_stream_${name}_total`,
      help: `Live stream (SSE): ${help}.`,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(figures()[field]);
      },
    });
  }
  const { live } = source;
  new Counter({
    name: 'vpp_control_live_messages_applied_total',
    help: 'Control: retained messages (aggregates, service heartbeats) the live view applied.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(live.stats().applied);
    },
  });
  new Counter({
    name: 'vpp_control_live_messages_cleared_total',
    help: 'Control: retained messages cleared (empty payload), which removed a live view entry.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(live.stats().cleared);
    },
  });
  new Counter({
    name: 'vpp_control_live_messages_rejected_total',
    help: 'Control: messages the live view rejected, by reason.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const { rejected } = live.stats();
      this.reset();
      for (const reason of Object.keys(LIVE_VIEW_REJECTIONS) as LiveViewRejection[]) this.inc({ reason }, rejected[reason] ?? 0);
    },
  });
}
