/**
 * Wiring of the parts into services. Each `start…` function builds one part
 * from the validated config and returns a handle whose `stop()` releases
 * everything it started. `vpp up` runs them all in one process; `vpp broker`,
 * `vpp ingest`, `vpp control` and `vpp sim` run one each, and they meet only
 * at the broker and the store.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { registerBrokerMetrics, startBroker, type Broker, type BrokerTap } from '../broker/index.ts';
import {
  InfeasibleDispatchError,
  buildControlApp,
  checkStoreHealth,
  createLiveView,
  createMqttRevocations,
  evaluateHealth,
  feedLiveView,
  registerControlMetrics,
  type Dispatcher as ControlDispatcher,
  type HealthReport,
} from '../control/index.ts';
import { parseFaultSpecs, planFleet, startFleet, watchFaultFile, type Fleet } from '../devices-sim/index.ts';
import { registerDispatchMetrics, startCommandSender, startDispatcher, type CommandSender, type Dispatcher } from '../dispatch/index.ts';
import {
  startIngest,
  connectMqttSubscription,
  createBrokerTapSource,
  IngestCounters,
  registerIngestMetrics,
  type BrokerTapSource,
  type Ingest,
} from '../ingest/index.ts';
import {
  createAlertmanagerNotifier,
  createMqttNotifier,
  createPagerDutyNotifier,
  createSlackNotifier,
  createWebhookNotifier,
  flattenNotifyCounters,
  registerNotifyMetrics,
  startNotifier,
  type Notifier,
  type NotifierWorker,
} from '../notify/index.ts';
import {
  SERVICE_PERMISSIONS,
  allDevicesFilter,
  encodeJson,
  parseDeviceTopic,
  serviceHealthTopic,
  type ServiceHealth,
  type AlertEvent,
  type DeviceType,
  type PresenceEvent,
  type ServiceAccount,
} from '../protocol/index.ts';
import {
  InfluxTelemetry,
  describeDevicesFrom,
  generateSecret,
  hashSecret,
  logInfluxClientTo,
  openSqliteStore,
  withTimeSeriesIn,
  type SqliteStore,
} from '../store/index.ts';
import type { Config } from './config.ts';
import { createMetricsRegistry, registerPartMetrics, startMetricsServer, type MetricsServer } from './metrics.ts';
import { loadOrCreateSecret } from './secrets.ts';

export interface Platform {
  config: Readonly<Config>;
  /**
   * Every storage port. With VPP_STORE=influxdb its telemetry and rollup
   * methods (and `store.telemetry`) are InfluxDB's, pruning them does
   * nothing (the server's retention policy deletes old points), health
   * checks both, close closes both; the rest is SQLite (withTimeSeriesIn).
   */
  store: SqliteStore;
  adminToken: string;
  /** Secret of each platform service's own MQTT account. */
  serviceSecrets: Record<ServiceAccount, string>;
  logger: Logger;
  clock: () => number;
  /**
   * The process's one Prometheus registry: process metrics from the start;
   * each service registers its part's metrics when it starts and removes
   * them when it stops. cli/metrics.ts serves it.
   */
  metrics: Registry;
}

export function openPlatform(config: Readonly<Config>, logger: Logger, clock: () => number = Date.now): Platform {
  // The data folder holds the database and secrets: the owner's only.
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(config.dataDir, 0o700);
  const DAY_MS = 86_400_000;
  const sqlite = openSqliteStore({
    file: join(config.dataDir, 'vpp.db'),
    logger,
    retention: {
      telemetryMs: config.retention.telemetryDays * DAY_MS,
      rollups1mMs: config.retention.rollups1mDays * DAY_MS,
      rollups15mMs: config.retention.rollups15mDays * DAY_MS,
    },
    deadLetters: {
      retentionMs: config.retention.deadLetterDays * DAY_MS,
      maxPayloadBytes: config.deadLetters.maxPayloadBytes,
      maxTotalBytes: Math.round(config.deadLetters.maxTotalMb * 1024 * 1024),
    },
  });
  let store = sqlite;
  if (config.influx) {
    logInfluxClientTo(logger.child({ component: 'influxdb' }));
    const influx = new InfluxTelemetry({
      url: config.influx.url,
      ...(config.influx.token !== undefined ? { token: config.influx.token } : {}),
      ...(config.influx.org !== undefined ? { org: config.influx.org } : {}),
      bucket: config.influx.bucket,
      database: config.influx.database,
      // Tags of each point: the device's type, site and region, as the registry has them.
      describeDevice: describeDevicesFrom(sqlite, clock),
    });
    store = withTimeSeriesIn(sqlite, influx);
    logger.info(
      { url: config.influx.url, bucket: config.influx.bucket, database: config.influx.database, writeApi: config.influx.org === undefined ? 'v1' : 'v2' },
      "telemetry and rollups in InfluxDB (their retention is the bucket's retention policy); everything else in SQLite",
    );
  }
  return {
    config,
    store,
    adminToken: loadOrCreateSecret(config.dataDir, 'admin-token', config.adminToken),
    serviceSecrets: {
      'vpp-ingest': loadOrCreateSecret(config.dataDir, 'ingest-secret', config.ingestSecret),
      'vpp-control': loadOrCreateSecret(config.dataDir, 'control-secret', config.controlSecret),
      'vpp-observer': loadOrCreateSecret(config.dataDir, 'observer-secret', config.observerSecret),
      'vpp-dispatch': loadOrCreateSecret(config.dataDir, 'dispatch-secret', config.dispatchSecret),
    },
    logger,
    clock,
    metrics: createMetricsRegistry(),
  };
}

export interface Service {
  stop(): Promise<void>;
}

/**
 * The process's metrics server: GET /metrics on VPP_HOST:VPP_METRICS_PORT,
 * serving `platform.metrics` (what every service of the process registered).
 * Started first and stopped last by every `vpp` command.
 */
export async function startMetricsService(platform: Platform): Promise<MetricsServer> {
  const { config, logger } = platform;
  return startMetricsServer({ host: config.host, port: config.metricsPort, registry: platform.metrics, logger });
}

/** Connects as a platform service: its own account, secret and fixed client id. */
async function connectService(url: string, platform: Platform, account: ServiceAccount, options: { clean?: boolean } = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    username: account,
    password: platform.serviceSecrets[account],
    clientId: SERVICE_PERMISSIONS[account].clientId,
    protocolVersion: 4,
    reconnectPeriod: 1_000,
    connectTimeout: 10_000,
    clean: options.clean ?? true,
  });
}

export interface DispatchService extends Service {
  sender: CommandSender;
  dispatcher: Dispatcher;
}

/** The dispatcher over the store; with `runLoop`, it also runs the control loop. */
function createDispatcher(platform: Platform, runLoop: boolean, onCommandsCreated: () => void): Dispatcher {
  const { store, clock, logger, config } = platform;
  return startDispatcher({
    dispatches: store.dispatches,
    commands: store.commands,
    registry: store,
    twins: store,
    clock,
    logger,
    onCommandsCreated,
    settings: { loopMs: config.dispatchLoopMs },
    runLoop,
  });
}

/** The dispatcher as control sees it: an infeasible request is control's error. */
function forControl(dispatcher: Dispatcher): ControlDispatcher {
  return {
    plan: (request) => dispatcher.plan(request),
    create(request) {
      const result = dispatcher.create(request);
      if ('infeasible' in result) throw new InfeasibleDispatchError(result.infeasible);
      return result.dispatch;
    },
    cancel: (id) => dispatcher.cancel(id),
  };
}

/**
 * Commands to devices: the command sender on the vpp-dispatch account. Its
 * session is persistent (clean: false) and its acks subscription QoS 1, so
 * acks that arrive while it is away wait in the broker for it.
 */
export async function startDispatchService(platform: Platform, mqttUrl: string): Promise<DispatchService> {
  const { store, clock, logger } = platform;
  const client = await connectService(mqttUrl, platform, 'vpp-dispatch', { clean: false });
  const sender = startCommandSender({
    commands: store.commands,
    twins: store,
    publish: async (topic, payload) => {
      await client.publishAsync(topic, payload, { qos: 1 });
    },
    clock,
    logger,
  });
  client.on('message', (topic, payload) => {
    const parsed = parseDeviceTopic(topic);
    if (parsed?.channel === 'acks') sender.handleAck(parsed.deviceId, payload);
  });
  client.on('error', (error) => logger.warn({ err: error }, 'dispatch MQTT connection error'));
  await client.subscribeAsync(allDevicesFilter('acks'), { qos: 1 });
  const dispatcher = createDispatcher(platform, true, () => sender.wake());
  // A heartbeat with the sender's counters, like ingest's: GET /api/v1/services shows it.
  const startedAtMs = clock();
  const heartbeat = (ok: boolean, detail?: string) => {
    const health: ServiceHealth = { service: 'dispatch', ts: clock(), ok, startedAtMs, counters: { ...sender.counters() }, ...(detail ? { detail } : {}) };
    client.publish(serviceHealthTopic('dispatch'), encodeJson(health), { qos: 0, retain: true });
  };
  heartbeat(true);
  const beat = setInterval(() => heartbeat(true), 2_000).unref();
  const unregisterMetrics = registerPartMetrics(platform.metrics, (registry) =>
    registerDispatchMetrics(registry, { sender, commands: store.commands, dispatches: store.dispatches, clock }),
  );
  return {
    sender,
    dispatcher,
    async stop() {
      unregisterMetrics();
      clearInterval(beat);
      await dispatcher.stop();
      await sender.stop();
      heartbeat(false, 'stopped');
      await client.endAsync();
    },
  };
}

export async function startBrokerService(platform: Platform, inProcess?: { tap: BrokerTap; onPresence: (event: PresenceEvent) => void }): Promise<Broker> {
  const { config } = platform;
  const broker = await startBroker({
    host: config.host,
    port: config.mqttPort,
    credentials: platform.store,
    serviceAccounts: platform.serviceSecrets,
    throttle: {
      maxConnectionsPerAddress: config.access.mqttMaxConnectionsPerAddress,
      maxConnections: config.access.mqttMaxConnections,
      maxFailures: config.access.mqttMaxAuthFailures,
      maxFailuresPerAddress: config.access.mqttMaxAuthFailuresPerAddress,
    },
    ...(config.access.tls ? { tls: { cert: config.access.tls.cert, key: config.access.tls.key, port: config.access.tls.mqttsPort } } : {}),
    ...(inProcess ? { tap: inProcess.tap, onPresence: inProcess.onPresence } : {}),
    clock: platform.clock,
    logger: platform.logger,
  });
  const unregisterMetrics = registerPartMetrics(platform.metrics, (registry) => registerBrokerMetrics(registry, broker));
  return {
    ...broker,
    async close() {
      unregisterMetrics();
      await broker.close();
    },
  };
}

export interface IngestService extends Service {
  ingest: Ingest;
  /** Delivers alert transitions; wake it when this process stored one. */
  notifier: NotifierWorker;
}

/** Open alerts are re-sent to Alertmanager this often (it forgets alerts not re-sent). */
const ALERTMANAGER_RESEND_MS = 60_000;

/**
 * One notifier per configured integration, plus MQTT (always): every
 * transition is published under vpp/v1/alerts/… through `publish`.
 */
export function buildNotifiers(config: Readonly<Config>, publish: Parameters<typeof createMqttNotifier>[0]['publish'], clock: () => number): Notifier[] {
  const { alerts } = config;
  const notifiers: Notifier[] = [createMqttNotifier({ publish })];
  if (alerts.webhook) notifiers.push(createWebhookNotifier({ url: alerts.webhook.url, secret: alerts.webhook.secret, clock }));
  if (alerts.slack) notifiers.push(createSlackNotifier({ url: alerts.slack.url, clock }));
  if (alerts.pagerduty) notifiers.push(createPagerDutyNotifier({ routingKey: alerts.pagerduty.routingKey, url: alerts.pagerduty.url, source: `vpp@${hostname()}`, clock }));
  if (alerts.alertmanager) notifiers.push(createAlertmanagerNotifier({ url: alerts.alertmanager.url, resendIntervalMs: ALERTMANAGER_RESEND_MS, clock }));
  return notifiers;
}

/**
 * Ingest with either source: the embedded broker's tap (`tapInto` set, one
 * process) or a persistent MQTT subscription (its own process).
 */
export async function startIngestService(
  platform: Platform,
  mqttUrl: string,
  tapInto?: { counters: IngestCounters; source: BrokerTapSource; brokerStartedAtMs: number },
): Promise<IngestService> {
  const { config, store, clock, logger } = platform;
  const counters = tapInto?.counters ?? new IngestCounters();
  const subscription = tapInto
    ? undefined
    : await connectMqttSubscription({
        url: mqttUrl,
        username: 'vpp-ingest',
        password: platform.serviceSecrets['vpp-ingest'],
        clientId: SERVICE_PERMISSIONS['vpp-ingest'].clientId,
        maxInflight: config.ingest.maxInflight,
        counters,
        clock,
        onError: (error) => logger.warn({ err: error }, 'ingest MQTT connection error'),
      });
  // With the tap, ingest's one MQTT connection only publishes (aggregates, heartbeat).
  const publisher = subscription?.client ?? (await connectService(mqttUrl, platform, 'vpp-ingest'));
  const source = tapInto?.source ?? subscription!;
  // The notifier runs beside ingest, the store's writer: it delivers what
  // rules and operators (control, maybe in another process) stored.
  const notifier = startNotifier({
    outbox: store.alerts,
    alerts: store.alerts,
    notifiers: buildNotifiers(
      config,
      async (topic, payload, { qos, retain }) => {
        await publisher.publishAsync(topic, payload, { qos, retain });
      },
      clock,
    ),
    routes: config.alerts.rules.routes,
    resendIntervalMs: ALERTMANAGER_RESEND_MS,
    clock,
    logger,
  });
  const ingest = startIngest({
    source,
    registry: store,
    telemetry: store,
    twins: store,
    deadLetters: store,
    publish: (topic, payload, { retain }) => {
      publisher.publish(topic, payload, { qos: 0, retain });
    },
    clock,
    logger,
    counters,
    ...(tapInto ? { brokerStartedAtMs: tapInto.brokerStartedAtMs } : {}),
    heartbeatCounters: () => flattenNotifyCounters(notifier.counters()),
    alerting: {
      rules: config.alerts.rules.rules,
      alerts: store.alerts,
      tickMs: 1_000,
      startupGraceMs: config.alerts.startupGraceSeconds * 1_000,
      onEvents: () => notifier.wake(),
    },
    settings: {
      maxBatchMessages: config.ingest.maxBatchMessages,
      maxBatchDelayMs: config.ingest.maxBatchDelayMs,
      writeRetryDelayMs: 100,
      maxFutureMs: config.ingest.maxFutureMs,
      maxAgeMs: config.ingest.maxAgeMs,
      rollupFlushEveryMs: 1_000,
      rollupLatenessMs: config.ingest.rollupLatenessMs,
      liveIntervalMs: config.ingest.liveIntervalMs,
      liveWindowMs: config.ingest.liveWindowMs,
      heartbeatIntervalMs: 2_000,
      directoryRefreshMs: 5_000,
      maxMetricsPerDevice: config.ingest.maxMetricsPerDevice,
      staleAfterMs: config.presence.deviceIntervalMs * config.presence.staleAfterIntervals,
      presenceCheckMs: 1_000,
      stallAfterMs: config.ingest.stallAfterMs,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      deadLettersPerMinute: config.ingest.deadLettersPerDevicePerMinute,
      deadLetterBurst: config.ingest.deadLettersPerDevicePerMinute * 2,
    },
  });
  // Retention: the writer prunes, a minute after start and then hourly.
  const prune = async () => {
    try {
      const telemetry = await store.pruneTelemetry(clock());
      const rollups = await store.pruneRollups(clock());
      const deadLetters = store.pruneDeadLetters(clock());
      const alerts = store.alerts.pruneAlerts(clock(), config.alerts.retentionDays * 86_400_000);
      logger.debug({ telemetry, rollups, deadLetters, alerts }, 'pruned data past retention');
    } catch (error) {
      logger.warn({ err: error }, 'pruning failed; retried at the next hour');
    }
  };
  const firstPrune = setTimeout(() => void prune(), 60_000).unref();
  const hourlyPrune = setInterval(() => void prune(), 3_600_000).unref();
  const unregisterMetrics = registerPartMetrics(platform.metrics, (registry) => {
    registerIngestMetrics(registry, ingest);
    registerNotifyMetrics(registry, { worker: notifier, alerts: store.alerts });
  });
  return {
    ingest,
    notifier,
    async stop() {
      unregisterMetrics();
      clearTimeout(firstPrune);
      clearInterval(hourlyPrune);
      await ingest.stop();
      await notifier.stop();
      if (subscription) await subscription.disconnect();
      else await publisher.endAsync();
    },
  };
}

export interface EmbeddedIngest extends Service {
  broker: Broker;
  ingest: IngestService;
}

/**
 * The embedded broker with ingest on its tap, as `vpp up` runs them. `stop()`
 * closes the broker first, so that the wills of devices still connected go
 * through the tap and are committed, then drains ingest.
 */
export async function startEmbeddedIngest(platform: Platform): Promise<EmbeddedIngest> {
  const counters = new IngestCounters();
  const source = createBrokerTapSource(counters, platform.clock);
  const broker = await startBrokerService(platform, { tap: source.tap, onPresence: (event) => source.onPresence(event) });
  // Connections older than this broker run are gone: presence is rebuilt from the ones that come.
  const ingest = await startIngestService(platform, broker.url, { counters, source, brokerStartedAtMs: broker.startedAtMs });
  return {
    broker,
    ingest,
    async stop() {
      await broker.close();
      await ingest.stop();
    },
  };
}

export interface ControlService extends Service {
  url: string;
}

/** A service heartbeat counts as alive for this many intervals. */
const HEARTBEAT_GRACE_MS = 10_000;

/**
 * The control API. `wake` tells the workers of this process that an
 * operator acknowledged or resolved an alert (the notifier) or created a
 * command (the command sender); workers in another process find the change
 * at their next poll.
 */
export async function startControlService(
  platform: Platform,
  mqttUrl: string,
  wake: { onAlertTransition?: (event: AlertEvent) => void; onCommandCreated?: () => void; dispatcher?: Dispatcher } = {},
): Promise<ControlService> {
  const { config, store, clock, logger } = platform;
  const client = await connectService(mqttUrl, platform, 'vpp-control');
  const live = createLiveView();
  const stopFeeding = await feedLiveView(client, live);

  const app = await buildControlApp({
    registry: store,
    telemetry: store,
    twins: store,
    deadLetters: store,
    live,
    revocations: createMqttRevocations(client),
    health: {
      async check(): Promise<HealthReport> {
        return evaluateHealth({
          serviceHealth: live.getServiceHealth('ingest'),
          brokerConnected: client.connected,
          storeCheck: await checkStoreHealth(store),
          nowMs: clock(),
          heartbeatGraceMs: HEARTBEAT_GRACE_MS,
        });
      },
    },
    alerts: store.alerts,
    alertRules: config.alerts.rules,
    onAlertTransition: wake.onAlertTransition ?? (() => undefined),
    commands: store.commands,
    onCommandCreated: wake.onCommandCreated ?? (() => undefined),
    dispatches: store.dispatches,
    // On its own, control plans, stores and cancels; the dispatch service's loop and sender act on it.
    dispatcher: forControl(wake.dispatcher ?? createDispatcher(platform, false, () => undefined)),
    tokens: store.tokens,
    audit: store.audit,
    access: {
      rateLimitPerMinute: config.access.httpRequestsPerTokenPerMinute,
      rateLimitPerAddressPerMinute: config.access.httpRequestsPerAddressPerMinute,
      failedAuthPerAddressPerMinute: config.access.httpFailedAuthPerAddressPerMinute,
      corsOrigins: config.access.corsOrigins,
    },
    stream: { ...config.stream },
    dashboardDir: config.dashboardDir,
    secretGraceMs: config.secretGraceMs,
    adminToken: platform.adminToken,
    clock,
    logger,
  }, config.access.tls ? { https: { key: config.access.tls.key, cert: config.access.tls.cert } } : {});
  await app.listen({ host: config.host, port: config.httpPort });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.httpPort;
  // Audit records past their retention go hourly (the first time a minute after start).
  const pruneAudit = () => {
    try {
      store.audit.pruneAudit(clock(), config.access.auditRetentionDays * 86_400_000);
    } catch (error) {
      logger.warn({ err: error }, 'pruning the audit log failed; retried at the next hour');
    }
  };
  const firstPrune = setTimeout(pruneAudit, 60_000).unref();
  const hourlyPrune = setInterval(pruneAudit, 3_600_000).unref();
  const unregisterMetrics = registerPartMetrics(platform.metrics, (registry) => registerControlMetrics(registry, { app, live }));
  return {
    url: `${config.access.tls ? 'https' : 'http'}://${config.host}:${port}`,
    async stop() {
      unregisterMetrics();
      clearTimeout(firstPrune);
      clearInterval(hourlyPrune);
      await app.close();
      await stopFeeding();
      await client.endAsync();
    },
  };
}

/**
 * Registers each device (or, when it exists, gives it a new secret) and
 * returns it with its secret, which is stored only hashed. A revoked device
 * stays revoked: it is left out of the result, so it never connects again.
 */
export function issueCredentials<D extends { id: string; type: DeviceType; siteId: string }>(
  store: SqliteStore,
  devices: readonly D[],
  nowMs: number,
): Array<D & { secret: string }> {
  const issued: Array<D & { secret: string }> = [];
  for (const device of devices) {
    const existing = store.getDevice(device.id);
    if (existing && existing.revokedAtMs !== null) continue;
    const secret = generateSecret();
    const secretHash = hashSecret(secret);
    if (existing) store.resetDeviceSecret(device.id, secretHash);
    else store.createDevice({ id: device.id, type: device.type, siteId: device.siteId, secretHash }, nowMs);
    issued.push({ ...device, secret });
  }
  return issued;
}

export interface SimService extends Service {
  fleet: Fleet;
  devices: number;
}

/**
 * Provisions the simulated fleet in the registry (sites and devices; every
 * start gives each simulated device a fresh secret) and connects it.
 */
/** The simulator's fault file in the data folder: `vpp fault` appends to it, the running simulator reads it. */
export function faultFilePath(config: Readonly<Config>): string {
  return join(config.dataDir, 'sim-faults.log');
}

export async function startSimService(platform: Platform, mqttUrl: string): Promise<SimService> {
  const { config, store, clock, logger } = platform;
  const faults = parseFaultSpecs(config.sim.faults);
  if (!faults.ok) throw new Error(`VPP_SIM_FAULTS: ${faults.problems.join('; ')}`);
  const plan = planFleet({ sites: config.sim.sites, seed: config.sim.seed, regions: config.sim.regions });
  for (const site of plan.sites) store.upsertSite(site);
  const devices = issueCredentials(store, plan.devices, clock());
  const fleet = await startFleet({
    mqttUrl,
    devices,
    seed: config.sim.seed,
    speed: config.sim.speed,
    telemetryIntervalMs: config.sim.telemetryIntervalMs,
    qos: config.sim.qos,
    sites: plan.sites,
    faults: faults.value,
    commandGraceMs: config.sim.commandGraceMs,
    logger,
  });
  const faultFile = watchFaultFile({ file: faultFilePath(config), fleet, logger });
  return {
    fleet,
    devices: devices.length,
    async stop() {
      faultFile.stop();
      await fleet.stop();
    },
  };
}
