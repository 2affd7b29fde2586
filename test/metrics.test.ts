/**
 * The Prometheus collectors of each part: their values follow the counters
 * the part keeps (read at scrape time), their label sets are bounded (fixed
 * lists, never a device id), and the README lists exactly the metric names
 * that are registered. Control's stream metrics and the metrics server are
 * checked on the running platform, over real sockets.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { registerBrokerMetrics, BROKER_REFUSAL_REASONS } from '../broker/index.ts';
import { createBrokerCounters } from '../broker/counters.ts';
import { registerDispatchMetrics, type CommandSenderCounters } from '../dispatch/index.ts';
import { IngestCounters, registerIngestMetrics } from '../ingest/index.ts';
import { registerNotifyMetrics, type NotifyCounters } from '../notify/index.ts';
import { COMMAND_STATES, type CommandState } from '../protocol/index.ts';
import { SseClient } from '../control/stream/test-sse-client.ts';
import type { DispatchSample, StoredDispatch } from '../store/types.ts';
import { ADMIN_TOKEN, eventually, removeDir, startPlatform, type RunningPlatform } from './support/platform.ts';

interface Sample {
  labels: Record<string, string | number | undefined>;
  value: number;
}

async function samples(registry: Registry, name: string): Promise<Sample[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} is not registered`);
  return (await metric.get()).values.map((v) => ({ labels: { ...v.labels }, value: v.value }));
}

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  return (await samples(registry, name)).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length)?.value;
}

/** Every label value of `name`, per label name. */
async function labelValues(registry: Registry, name: string): Promise<Record<string, string[]>> {
  const out: Record<string, Set<string>> = {};
  for (const s of await samples(registry, name)) for (const [k, v] of Object.entries(s.labels)) (out[k] ??= new Set()).add(String(v));
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, [...v].sort()]));
}

describe('broker collector', () => {
  it('reads the counters at each scrape: connections gauge, refusals by reason', async () => {
    const registry = new Registry();
    const counters = createBrokerCounters();
    registerBrokerMetrics(registry, { counters: () => ({ ...counters }) });
    expect(await value(registry, 'vpp_broker_connections')).toBe(0);

    counters.clientsConnected = 7;
    counters.connectionsAccepted = 9;
    counters.connectionsRefusedBadSecret = 3;
    counters.connectionsRefusedThrottled = 2;
    counters.tapPending = 4;
    expect(await value(registry, 'vpp_broker_connections')).toBe(7);
    expect(await value(registry, 'vpp_broker_connections_accepted_total')).toBe(9);
    expect(await value(registry, 'vpp_broker_connections_refused_total', { reason: 'bad-secret' })).toBe(3);
    expect(await value(registry, 'vpp_broker_connections_refused_total', { reason: 'throttled' })).toBe(2);
    expect(await value(registry, 'vpp_broker_tap_pending')).toBe(4);

    counters.connectionsRefusedBadSecret = 5;
    expect(await value(registry, 'vpp_broker_connections_refused_total', { reason: 'bad-secret' })).toBe(5);
    expect(await labelValues(registry, 'vpp_broker_connections_refused_total')).toEqual({ reason: Object.keys(BROKER_REFUSAL_REASONS).sort() });
  });

  it('counts every refusal reason of the broker, and they add up to connectionsRefused', () => {
    const fields = Object.keys(createBrokerCounters()).filter((k) => k.startsWith('connectionsRefused') && k !== 'connectionsRefused');
    expect([...(Object.values(BROKER_REFUSAL_REASONS) as string[])].sort()).toEqual(fields.sort());
  });
});

describe('ingest collector', () => {
  it('reads counters and liveness: accepted, rejected by reason, in flight, oldest unacked age, store errors', async () => {
    const registry = new Registry();
    const counters = new IngestCounters();
    const liveness = { inflight: 0, oldestUnackedAgeMs: null as number | null, lastCommitAtMs: null as number | null, stalled: false };
    let running = true;
    registerIngestMetrics(registry, { counters, liveness: () => liveness, running: () => running });
    expect(await value(registry, 'vpp_ingest_oldest_unacked_age_seconds')).toBe(0);

    counters.received = 12;
    counters.acceptedMessages = 10;
    counters.reject('not-json');
    counters.reject('not-json');
    counters.reject('unknown-device');
    counters.writeFailures = 1;
    counters.batchesCommitted = 2;
    counters.samplesCommitted = 10;
    Object.assign(liveness, { inflight: 5, oldestUnackedAgeMs: 1_500, lastCommitAtMs: 1_700_000_000_000, stalled: true });
    running = false;

    expect(await value(registry, 'vpp_ingest_messages_received_total')).toBe(12);
    expect(await value(registry, 'vpp_ingest_messages_accepted_total')).toBe(10);
    expect(await value(registry, 'vpp_ingest_messages_rejected_total', { reason: 'not-json' })).toBe(2);
    expect(await value(registry, 'vpp_ingest_messages_rejected_total', { reason: 'unknown-device' })).toBe(1);
    expect(await value(registry, 'vpp_ingest_messages_rejected_total', { reason: 'schema' })).toBe(0);
    expect(await value(registry, 'vpp_ingest_store_errors_total', { operation: 'telemetry' })).toBe(1);
    expect(await value(registry, 'vpp_ingest_batches_committed_total')).toBe(2);
    expect(await value(registry, 'vpp_ingest_samples_committed_total')).toBe(10);
    expect(await value(registry, 'vpp_ingest_inflight_messages')).toBe(5);
    expect(await value(registry, 'vpp_ingest_oldest_unacked_age_seconds')).toBe(1.5);
    expect(await value(registry, 'vpp_ingest_last_commit_timestamp_seconds')).toBe(1_700_000_000);
    expect(await value(registry, 'vpp_ingest_stalled')).toBe(1);
    expect(await value(registry, 'vpp_ingest_running')).toBe(0);
    expect((await labelValues(registry, 'vpp_ingest_messages_rejected_total')).reason).toHaveLength(11);
    expect(await labelValues(registry, 'vpp_ingest_store_errors_total')).toEqual({ operation: ['alerts', 'rollups', 'telemetry'] });
  });
});

describe('notify collector', () => {
  it('reads the worker counters and the store counts; integrations outside the known list are left out', async () => {
    const registry = new Registry();
    const zero = { routed: 0, delivered: 0, failedAttempts: 0, dead: 0, resends: 0, resendFailures: 0 };
    const counters: NotifyCounters = { integrations: { mqtt: { ...zero }, webhook: { ...zero }, 'made-up': { ...zero, delivered: 9 } }, storeErrors: 0, inFlight: 0 };
    let deliveries: Record<string, Record<'pending' | 'delivered' | 'dead', number>> = {};
    let failStore = false;
    const open = { bySeverity: { critical: 0, warning: 0, info: 0 }, byState: { firing: 0, acknowledged: 0 } };
    registerNotifyMetrics(registry, {
      worker: { counters: () => counters },
      alerts: {
        countDeliveries: () => {
          if (failStore) throw new Error('database is locked');
          return deliveries;
        },
        countOpenAlerts: () => {
          if (failStore) throw new Error('database is locked');
          return open;
        },
      },
    });
    counters.integrations.webhook!.delivered = 4;
    counters.integrations.webhook!.failedAttempts = 2;
    counters.storeErrors = 1;
    counters.inFlight = 3;
    deliveries = { webhook: { pending: 1, delivered: 4, dead: 0 }, 'made-up': { pending: 1, delivered: 0, dead: 0 } };
    open.bySeverity.critical = 2;
    open.byState.firing = 1;
    open.byState.acknowledged = 1;

    expect(await value(registry, 'vpp_notify_delivered_total', { integration: 'webhook' })).toBe(4);
    expect(await value(registry, 'vpp_notify_attempts_failed_total', { integration: 'webhook' })).toBe(2);
    expect(await labelValues(registry, 'vpp_notify_delivered_total')).toEqual({ integration: ['mqtt', 'webhook'] });
    expect(await value(registry, 'vpp_notify_store_errors_total')).toBe(1);
    expect(await value(registry, 'vpp_notify_in_flight')).toBe(3);
    expect(await value(registry, 'vpp_notify_deliveries', { integration: 'webhook', state: 'pending' })).toBe(1);
    expect(await labelValues(registry, 'vpp_notify_deliveries')).toEqual({ integration: ['webhook'], state: ['dead', 'delivered', 'pending'] });
    expect(await value(registry, 'vpp_alerts_open_by_severity', { severity: 'critical' })).toBe(2);
    expect(await value(registry, 'vpp_alerts_open_by_severity', { severity: 'info' })).toBe(0);
    expect(await value(registry, 'vpp_alerts_open_by_state', { state: 'firing' })).toBe(1);

    // A store that cannot be read: the scrape still answers, with the last values.
    failStore = true;
    open.bySeverity.critical = 0;
    expect(await value(registry, 'vpp_alerts_open_by_severity', { severity: 'critical' })).toBe(2);
    expect(await value(registry, 'vpp_notify_deliveries', { integration: 'webhook', state: 'pending' })).toBe(1);
  });
});

describe('dispatch collector', () => {
  it('reads the sender counters, the commands by state and the tracking of active dispatches', async () => {
    const registry = new Registry();
    const sender: CommandSenderCounters = {
      sent: 0, resent: 0, heldForOfflineDevice: 0, publishFailures: 0, acksApplied: 0, acksIgnored: 0, acksInvalid: 0, expired: 0, completedWithoutAck: 0, failed: 0, storeErrors: 0,
    };
    const byState = Object.fromEntries(COMMAND_STATES.map((s) => [s, 0])) as Record<CommandState, number>;
    const running: Array<Pick<StoredDispatch, 'id' | 'state' | 'lastLoopAtMs'>> = [];
    const samplesOf: Record<string, DispatchSample> = {};
    registerDispatchMetrics(registry, {
      sender: { counters: () => ({ ...sender }) },
      commands: { countCommands: () => byState },
      dispatches: {
        runningDispatches: () => running as StoredDispatch[],
        listDispatchSamples: (id, query) => (samplesOf[id] && samplesOf[id].atMs >= (query.fromMs ?? 0) ? [samplesOf[id]] : []),
      },
      clock: () => 10_000,
    });
    expect(await value(registry, 'vpp_dispatches_active')).toBe(0);
    expect(await value(registry, 'vpp_dispatch_tracking_error_watts')).toBe(0);

    sender.sent = 6;
    sender.acksApplied = 5;
    sender.acksInvalid = 1;
    byState.completed = 4;
    byState.sent = 2;
    running.push({ id: 'a', state: 'active', lastLoopAtMs: 9_000 }, { id: 'b', state: 'active', lastLoopAtMs: 9_500 }, { id: 'c', state: 'scheduled', lastLoopAtMs: null });
    samplesOf.a = { atMs: 9_000, targetW: 10_000, measuredW: 9_000, confidence: 1, devicesReporting: 3 };
    samplesOf.b = { atMs: 9_500, targetW: -4_000, measuredW: -4_500, confidence: 1, devicesReporting: 2 };

    expect(await value(registry, 'vpp_dispatch_commands_sent_total')).toBe(6);
    expect(await value(registry, 'vpp_dispatch_acks_total', { outcome: 'applied' })).toBe(5);
    expect(await value(registry, 'vpp_dispatch_acks_total', { outcome: 'invalid' })).toBe(1);
    expect(await value(registry, 'vpp_commands', { state: 'completed' })).toBe(4);
    expect(await labelValues(registry, 'vpp_commands')).toEqual({ state: [...COMMAND_STATES].sort() });
    expect(await value(registry, 'vpp_dispatches_active')).toBe(2);
    expect(await value(registry, 'vpp_dispatch_target_watts')).toBe(6_000);
    expect(await value(registry, 'vpp_dispatch_measured_watts')).toBe(4_500);
    expect(await value(registry, 'vpp_dispatch_tracking_error_watts')).toBe(1_500);
  });
});

describe('on the running platform', () => {
  let running: RunningPlatform;
  beforeAll(async () => {
    running = await startPlatform({ VPP_SIM_SITES: '2', VPP_SIM_INTERVAL_MS: '200' });
  });
  afterAll(async () => {
    await running?.stop();
    if (running) removeDir(running.dataDir);
  });

  async function scrape(): Promise<string> {
    const response = await fetch(running.metrics.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text();
  }

  function read(text: string, series: string): number | undefined {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  it('serves every part once on one registry at /metrics, and only there', async () => {
    const text = await scrape();
    for (const prefix of ['vpp_broker_', 'vpp_ingest_', 'vpp_notify_', 'vpp_dispatch_', 'vpp_stream_', 'vpp_control_', 'process_', 'nodejs_']) {
      expect(text).toContain(`# TYPE ${prefix}`);
    }
    expect((await fetch(new URL('/other', running.metrics.url))).status).toBe(404);
    expect((await fetch(running.metrics.url, { method: 'POST' })).status).toBe(405);
  });

  it('reports what the platform does: MQTT connections, accepted messages, SSE clients', async () => {
    const devices = running.sim!.devices;
    // Devices plus the platform's own connections (ingest, dispatch, control).
    await eventually(async () => (read(await scrape(), 'vpp_broker_connections') === devices + 3 ? true : undefined), 20_000, 'every device connected');
    await eventually(async () => ((read(await scrape(), 'vpp_ingest_messages_accepted_total') ?? 0) > 0 ? true : undefined), 20_000, 'telemetry accepted');
    const text = await scrape();
    expect(read(text, 'vpp_ingest_messages_accepted_total')).toBeLessThanOrEqual(running.ingest.ingest.counters.acceptedMessages);
    expect(read(text, 'vpp_broker_connections')).toBe(running.broker.counters().clientsConnected);

    const stream = await SseClient.open(`${running.control.url}/api/v1/stream?topics=fleet`, { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(stream.status).toBe(200);
    try {
      // A collection is reused for up to a second (sharedCollection): the next one shows the client.
      const withClient = await eventually(async () => {
        const text = await scrape();
        return read(text, 'vpp_stream_clients') === 1 ? text : undefined;
      }, 5_000, 'the SSE client counted');
      expect(read(withClient, 'vpp_stream_clients')).toBe(1);
      expect(read(withClient, 'vpp_stream_connections_total')).toBeGreaterThanOrEqual(1);
    } finally {
      stream.close();
    }
    await eventually(async () => (read(await scrape(), 'vpp_stream_clients') === 0 ? true : undefined), 5_000, 'the SSE client gone');
  });

  it('labels vpp_ series only with bounded labels, never with a device or site id', async () => {
    const text = await scrape();
    const labelNames = new Set<string>();
    for (const line of text.split('\n').filter((l) => l.startsWith('vpp_') && l.includes('{'))) {
      for (const [, name, value] of line.matchAll(/([a-z_]+)="([^"]*)"/g)) {
        labelNames.add(name!);
        expect(value).not.toMatch(/site|battery|solar|meter/);
      }
    }
    // `le`: the bucket bounds of the ingest histograms, a fixed list.
    expect([...labelNames].sort()).toEqual(['integration', 'le', 'operation', 'outcome', 'reason', 'severity', 'state']);
  });

  it('records each committed batch in the ingest histograms', async () => {
    const text = await eventually(async () => {
      const scraped = await scrape();
      return /^vpp_ingest_batches_committed_total [1-9]/m.test(scraped) ? scraped : undefined;
    }, 20_000, 'a committed batch');
    const count = (name: string) => Number(new RegExp(`^${name}_count (\\d+)`, 'm').exec(text)?.[1]);
    const batches = Number(/^vpp_ingest_batches_committed_total (\d+)/m.exec(text)?.[1]);
    expect(batches).toBeGreaterThan(0);
    // Observed after the counters moved: a scrape may fall between the two for the batch being committed.
    expect(count('vpp_ingest_batch_samples')).toBeGreaterThanOrEqual(batches - 1);
    expect(count('vpp_ingest_commit_duration_seconds')).toBe(count('vpp_ingest_batch_samples'));
    expect(text).toMatch(/^vpp_ingest_commit_duration_seconds_bucket\{le="\+Inf"\} \d+/m);
  });

  it('README lists exactly the vpp_ metrics the platform registers', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Metrics\n'), readme.indexOf('\n## ', readme.indexOf('\n## Metrics\n') + 1));
    const documented = [...section.matchAll(/^\| `(vpp_[a-z0-9_]+)` \|/gm)].map((m) => m[1]);
    const registered = running.platform.metrics.getMetricsAsArray().map((m) => m.name).filter((n) => n.startsWith('vpp_'));
    expect(documented.sort()).toEqual(registered.sort());
  });
});
