/**
 * Configuration: one schema with defaults, read from the environment in one
 * place, validated as a whole (every problem is listed, not just the first),
 * and frozen. The alert rules file is read and checked here too, so its
 * problems are listed with the others.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { validateAlertRules, type AlertRulesConfig } from '../protocol/index.ts';
import { splitBucket } from '../store/index.ts';

/** The rules `npm start` uses unless VPP_ALERT_RULES names another file. */
export const DEFAULT_ALERT_RULES_FILE = fileURLToPath(new URL('./alert-rules.default.yaml', import.meta.url));
/** Larger rules files are refused: a rules file is a few dozen rules. */
const MAX_RULES_FILE_BYTES = 256 * 1024;

export interface Config {
  host: string;
  httpPort: number;
  mqttPort: number;
  /** Where the process serves its Prometheus metrics (GET /metrics on `host`); 0: a free port. */
  metricsPort: number;
  /** Where separate processes find the broker. */
  mqttUrl: string;
  dataDir: string;
  /**
   * Where telemetry and rollups are kept: in the SQLite database (the
   * default), or in InfluxDB, everything else staying in SQLite. `influx` is
   * set exactly when `timeSeriesStore` is 'influxdb'.
   */
  timeSeriesStore: 'sqlite' | 'influxdb';
  influx:
    | {
        url: string;
        /** 2.x/3.x API token; 1.x `user:password`; undefined when the server needs none. */
        token: string | undefined;
        /** 2.x/3.x organisation: with one, writes use the v2 API (/api/v2/write), without, 1.x's /write. */
        org: string | undefined;
        /** 2.x/3.x bucket, or 1.x `database` / `database/retention-policy`. */
        bucket: string;
        /** The database InfluxQL reads (/query's db). */
        database: string;
      }
    | undefined;
  /** Admin bearer token for /api/v1; generated and kept in the data folder when not set. */
  adminToken: string | undefined;
  /** Secrets of the platform services' own MQTT accounts, one each; generated and kept in the data folder when not set. */
  ingestSecret: string | undefined;
  controlSecret: string | undefined;
  observerSecret: string | undefined;
  dispatchSecret: string | undefined;
  /** How long a device's previous secret keeps working after a rotation. */
  secretGraceMs: number;
  /** stop() waits this long for in-flight work before giving up (what was not committed was not acknowledged). */
  shutdownTimeoutMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  ingest: {
    source: 'tap' | 'mqtt';
    maxBatchMessages: number;
    maxBatchDelayMs: number;
    maxInflight: number;
    maxFutureMs: number;
    maxAgeMs: number;
    rollupLatenessMs: number;
    liveWindowMs: number;
    liveIntervalMs: number;
    maxMetricsPerDevice: number;
    /** Messages waiting this long with nothing committed: the pipeline reports itself stalled. */
    stallAfterMs: number;
    deadLettersPerDevicePerMinute: number;
  };
  /** How often the dispatch control loop runs. */
  dispatchLoopMs: number;
  stream: {
    maxClients: number;
    maxClientsPerToken: number;
    heartbeatMs: number;
    minIntervalMs: number;
    maxBufferedBytes: number;
  };
  /** The built dashboard control serves at `/`. */
  dashboardDir: string;
  access: {
    /** PEM certificate and key (read at start) for MQTT over TLS and HTTPS; both or neither. */
    tls: { cert: Buffer; key: Buffer; mqttsPort: number } | undefined;
    mqttMaxConnectionsPerAddress: number;
    mqttMaxConnections: number;
    /** Failed CONNECTs per device id within a minute before further ones are refused. */
    mqttMaxAuthFailures: number;
    /** The same per source address (higher: a site's devices may share one address). */
    mqttMaxAuthFailuresPerAddress: number;
    httpRequestsPerTokenPerMinute: number;
    httpRequestsPerAddressPerMinute: number;
    httpFailedAuthPerAddressPerMinute: number;
    /** Origins allowed to call the API from a browser; none by default. */
    corsOrigins: string[];
    auditRetentionDays: number;
  };
  presence: {
    /** The interval devices are expected to report at. */
    deviceIntervalMs: number;
    /** A connected device silent for this many intervals is stale. */
    staleAfterIntervals: number;
  };
  retention: {
    telemetryDays: number;
    rollups1mDays: number;
    rollups15mDays: number;
    deadLetterDays: number;
  };
  deadLetters: {
    maxPayloadBytes: number;
    maxTotalMb: number;
  };
  alerts: {
    rulesFile: string;
    rules: AlertRulesConfig;
    /** Resolved alerts older than this are deleted (hourly), with their transitions and deliveries. */
    retentionDays: number;
    /** After start, offline/stale rules do not fire and aggregate rules wait this long, while devices reconnect. */
    startupGraceSeconds: number;
    webhook: { url: string; secret: string } | undefined;
    slack: { url: string } | undefined;
    pagerduty: { routingKey: string; url: string } | undefined;
    alertmanager: { url: string } | undefined;
  };
  sim: {
    sites: number;
    speed: number;
    seed: number;
    telemetryIntervalMs: number;
    regions: string[];
    qos: 0 | 1;
    /** Faults to inject, `kind:target@seconds[-end]`, comma-separated (parsed by the simulator). */
    faults: string;
    /** A simulated device that lost the platform for longer than this drops its command and goes back to local control. */
    commandGraceMs: number;
  };
}

export class ConfigError extends Error {
  readonly code = 'invalid-config';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

interface Reader {
  problems: string[];
  env: Env;
}

function int(r: Reader, name: string, fallback: number, min: number, max: number): number {
  const raw = r.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    r.problems.push(`${name}=${JSON.stringify(raw)} must be an integer from ${min} to ${max}`);
    return fallback;
  }
  return value;
}

function num(r: Reader, name: string, fallback: number, min: number, max: number): number {
  const raw = r.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    r.problems.push(`${name}=${JSON.stringify(raw)} must be a number from ${min} to ${max}`);
    return fallback;
  }
  return value;
}

function oneOf<T extends string>(r: Reader, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = r.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    r.problems.push(`${name}=${JSON.stringify(raw)} must be one of ${allowed.join(', ')}`);
    return fallback;
  }
  return raw as T;
}

function str(r: Reader, name: string): string | undefined {
  const raw = r.env[name];
  return raw === undefined || raw === '' ? undefined : raw;
}

function secret(r: Reader, name: string): string | undefined {
  const value = str(r, name);
  if (value !== undefined && value.length < 16) r.problems.push(`${name} must be at least 16 characters long`);
  return value;
}

function url(r: Reader, name: string): string | undefined {
  const value = str(r, name);
  if (value === undefined) return undefined;
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
  } catch {
    r.problems.push(`${name}=${JSON.stringify(value)} must be an http:// or https:// URL`);
    return undefined;
  }
  return value;
}

/** Reads and checks the rules file; its problems are listed as `VPP_ALERT_RULES (file): …`. */
function alertRules(r: Reader, file: string): AlertRulesConfig {
  const empty: AlertRulesConfig = { rules: [], routes: [] };
  const report = (message: string) => r.problems.push(`VPP_ALERT_RULES (${file}): ${message}`);
  let text: string;
  try {
    const bytes = readFileSync(file);
    if (bytes.length > MAX_RULES_FILE_BYTES) {
      report(`larger than ${MAX_RULES_FILE_BYTES} bytes`);
      return empty;
    }
    text = bytes.toString('utf8');
  } catch (error) {
    report(`cannot be read: ${(error as Error).message}`);
    return empty;
  }
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    report(`is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}`);
    return empty;
  }
  const result = validateAlertRules(parsed);
  if (!result.ok) {
    for (const problem of result.problems) report(problem);
    return empty;
  }
  return result.config;
}

/** The TLS certificate and key files, read now; both or neither. */
function tlsFiles(r: Reader, mqttsPort: number): { cert: Buffer; key: Buffer; mqttsPort: number } | undefined {
  const certFile = str(r, 'VPP_TLS_CERT');
  const keyFile = str(r, 'VPP_TLS_KEY');
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    r.problems.push('VPP_TLS_CERT and VPP_TLS_KEY go together: set both (PEM files) or neither');
    return undefined;
  }
  const read = (name: string, file: string): Buffer | undefined => {
    try {
      const bytes = readFileSync(file);
      if (!bytes.toString('utf8').includes('-----BEGIN ')) r.problems.push(`${name} (${file}) is not a PEM file`);
      return bytes;
    } catch (error) {
      r.problems.push(`${name} (${file}) cannot be read: ${(error as Error).message}`);
      return undefined;
    }
  };
  const cert = read('VPP_TLS_CERT', certFile);
  const key = read('VPP_TLS_KEY', keyFile);
  return cert && key ? { cert, key, mqttsPort } : undefined;
}

/** A comma-separated list of web origins (scheme://host[:port]). */
function origins(r: Reader, name: string): string[] {
  const raw = str(r, name);
  if (raw === undefined) return [];
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const origin of list) {
    let ok: boolean;
    try {
      const parsed = new URL(origin);
      ok = (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.origin === origin;
    } catch {
      ok = false;
    }
    if (!ok) r.problems.push(`${name}: "${origin}" must be an origin like https://ops.example.com (scheme, host, optional port; no path)`);
  }
  return list;
}

/**
 * The InfluxDB settings: checked only with VPP_STORE=influxdb (URL and
 * bucket required), and refused without it, so that a setting meant for
 * InfluxDB is never silently ignored. Retention settings are SQLite's: with
 * InfluxDB, its retention policy decides, so setting them is a problem too.
 */
function influxSettings(r: Reader, timeSeriesStore: 'sqlite' | 'influxdb'): Config['influx'] {
  const names = ['VPP_INFLUX_URL', 'VPP_INFLUX_TOKEN', 'VPP_INFLUX_ORG', 'VPP_INFLUX_BUCKET', 'VPP_INFLUX_DATABASE'];
  if (timeSeriesStore === 'sqlite') {
    for (const name of names) if (str(r, name) !== undefined) r.problems.push(`${name} is set but VPP_STORE is sqlite: set VPP_STORE=influxdb to keep telemetry in InfluxDB, or unset it`);
    return undefined;
  }
  for (const name of ['VPP_RETENTION_TELEMETRY_DAYS', 'VPP_RETENTION_ROLLUPS_1M_DAYS', 'VPP_RETENTION_ROLLUPS_15M_DAYS']) {
    if (str(r, name) !== undefined) r.problems.push(`${name} does not apply with VPP_STORE=influxdb: InfluxDB's retention policy (of VPP_INFLUX_BUCKET) deletes old data`);
  }
  const influxUrl = url(r, 'VPP_INFLUX_URL');
  if (str(r, 'VPP_INFLUX_URL') === undefined) r.problems.push('VPP_INFLUX_URL is required with VPP_STORE=influxdb');
  const bucket = str(r, 'VPP_INFLUX_BUCKET');
  if (bucket === undefined) r.problems.push('VPP_INFLUX_BUCKET is required with VPP_STORE=influxdb (for InfluxDB 1.x: database or database/retention-policy)');
  const org = str(r, 'VPP_INFLUX_ORG');
  const bucketDatabase = bucket === undefined ? undefined : splitBucket(bucket).database;
  if (bucketDatabase === '') r.problems.push(`VPP_INFLUX_BUCKET=${JSON.stringify(bucket)} must name a database before any '/'`);
  const database = str(r, 'VPP_INFLUX_DATABASE');
  if (org === undefined && database !== undefined && bucketDatabase !== undefined && database !== bucketDatabase) {
    r.problems.push(`VPP_INFLUX_DATABASE=${JSON.stringify(database)} must be the database of VPP_INFLUX_BUCKET (${JSON.stringify(bucketDatabase)}) without VPP_INFLUX_ORG (InfluxDB 1.x writes and reads the same database)`);
  }
  if (influxUrl === undefined || bucket === undefined || bucketDatabase === undefined) return undefined;
  return { url: influxUrl, token: str(r, 'VPP_INFLUX_TOKEN'), org, bucket, database: database ?? bucketDatabase };
}

/** Every variable the platform reads, with its default and meaning (for README and `vpp help`). */
export const CONFIG_VARIABLES: ReadonlyArray<{ name: string; fallback: string; description: string }> = [
  { name: 'VPP_HOST', fallback: '127.0.0.1', description: 'address the HTTP, MQTT and metrics servers listen on' },
  { name: 'VPP_HTTP_PORT', fallback: '8080', description: 'control API, OpenAPI at /docs' },
  { name: 'VPP_MQTT_PORT', fallback: '1883', description: 'MQTT broker (TCP)' },
  { name: 'VPP_METRICS_PORT', fallback: '9464', description: 'Prometheus metrics of the process at /metrics (no authentication: keep it off public networks); 0 for a free port' },
  { name: 'VPP_MQTT_URL', fallback: 'mqtt://127.0.0.1:$VPP_MQTT_PORT', description: 'where ingest, control and sim find the broker when run as separate processes' },
  { name: 'VPP_DATA_DIR', fallback: './data', description: 'SQLite database and generated secrets' },
  { name: 'VPP_STORE', fallback: 'sqlite', description: 'where telemetry and rollups are kept: sqlite (the database in $VPP_DATA_DIR) or influxdb (registry, twins, alerts, commands and the rest stay in SQLite)' },
  { name: 'VPP_INFLUX_URL', fallback: 'none (required with VPP_STORE=influxdb)', description: 'InfluxDB base URL, e.g. http://127.0.0.1:8086' },
  { name: 'VPP_INFLUX_TOKEN', fallback: 'none', description: 'InfluxDB 2.x/3.x API token; for 1.x user:password (HTTP basic auth), or unset when authentication is off' },
  { name: 'VPP_INFLUX_ORG', fallback: 'none', description: 'InfluxDB 2.x/3.x organisation: with one, writes go to /api/v2/write; without, to 1.x\'s /write?db=&rp=' },
  { name: 'VPP_INFLUX_BUCKET', fallback: 'none (required with VPP_STORE=influxdb)', description: 'where writes go: a 2.x/3.x bucket, or for 1.x database or database/retention-policy (the policy decides how long data is kept)' },
  { name: 'VPP_INFLUX_DATABASE', fallback: 'the bucket\'s database part', description: 'database that InfluxQL reads on /query (db); with 2.x/3.x, a DBRP mapping of it onto the bucket must exist; with 1.x, the bucket\'s database' },
  { name: 'VPP_ADMIN_TOKEN', fallback: 'generated, kept in $VPP_DATA_DIR/admin-token', description: 'bearer token for /api/v1 (at least 16 characters)' },
  { name: 'VPP_INGEST_SECRET', fallback: 'generated, kept in $VPP_DATA_DIR/ingest-secret', description: 'password of the vpp-ingest MQTT account' },
  { name: 'VPP_CONTROL_SECRET', fallback: 'generated, kept in $VPP_DATA_DIR/control-secret', description: 'password of the vpp-control MQTT account' },
  { name: 'VPP_OBSERVER_SECRET', fallback: 'generated, kept in $VPP_DATA_DIR/observer-secret', description: 'password of the read-only vpp-observer MQTT account (alerts, aggregates, heartbeats)' },
  { name: 'VPP_DISPATCH_SECRET', fallback: 'generated, kept in $VPP_DATA_DIR/dispatch-secret', description: 'password of the vpp-dispatch MQTT account (sends commands, reads acks)' },
  { name: 'VPP_SECRET_GRACE_SECONDS', fallback: '86400', description: 'how long a device\'s previous secret keeps working after a rotation; then its connections are closed' },
  { name: 'VPP_SHUTDOWN_TIMEOUT_MS', fallback: '10000', description: 'longest wait for in-flight messages to commit on stop; what was not committed was not acknowledged' },
  { name: 'VPP_LOG_LEVEL', fallback: 'info', description: 'fatal, error, warn, info, debug, trace or silent' },
  { name: 'VPP_INGEST_SOURCE', fallback: 'tap (vpp up) / mqtt (vpp ingest)', description: 'tap: in-process broker tap; mqtt: persistent MQTT subscription' },
  { name: 'VPP_INGEST_BATCH_MESSAGES', fallback: '5000', description: 'most messages per store transaction' },
  { name: 'VPP_INGEST_BATCH_DELAY_MS', fallback: '50', description: 'longest wait before a partial batch is written' },
  { name: 'VPP_INGEST_MAX_INFLIGHT', fallback: '20000', description: 'unacknowledged messages before the MQTT source stops reading' },
  { name: 'VPP_INGEST_MAX_FUTURE_MS', fallback: '300000', description: 'samples stamped further ahead are dead-lettered' },
  { name: 'VPP_INGEST_MAX_AGE_MS', fallback: '2592000000', description: 'samples older than this (30 days) are dead-lettered' },
  { name: 'VPP_ROLLUP_LATENESS_MS', fallback: '10000', description: 'how long after its end a minute stays open for late samples' },
  { name: 'VPP_LIVE_WINDOW_MS', fallback: '60000', description: 'a device counts in live aggregates when heard from within this window' },
  { name: 'VPP_LIVE_INTERVAL_MS', fallback: '1000', description: 'how often live aggregates are computed and published' },
  { name: 'VPP_INGEST_MAX_METRICS_PER_DEVICE', fallback: '64', description: 'distinct metric names one device may have; telemetry adding more is dead-lettered' },
  { name: 'VPP_INGEST_STALL_AFTER_MS', fallback: '30000', description: 'messages waiting this long with nothing committed: /healthz and /readyz report the pipeline stalled' },
  { name: 'VPP_DEAD_LETTERS_PER_DEVICE_PER_MINUTE', fallback: '10', description: 'rejected messages stored per device per minute (bursts of twice that); the rest are only counted' },
  { name: 'VPP_DEAD_LETTER_MAX_PAYLOAD_BYTES', fallback: '4096', description: 'bytes of a rejected payload kept (its size and SHA-256 are kept whole)' },
  { name: 'VPP_DEAD_LETTER_MAX_MB', fallback: '64', description: 'total size of stored dead letters (payloads, topics, details); the oldest go first' },
  { name: 'VPP_DISPATCH_LOOP_MS', fallback: '5000', description: 'how often the dispatch control loop compares measured power with each running dispatch\'s target and corrects' },
  { name: 'VPP_DEVICE_INTERVAL_MS', fallback: '10000', description: 'the telemetry interval devices are expected to keep' },
  { name: 'VPP_STALE_AFTER_INTERVALS', fallback: '3', description: 'a connected device silent for this many intervals is reported stale' },
  { name: 'VPP_RETENTION_TELEMETRY_DAYS', fallback: '7', description: 'raw telemetry older than this is deleted (hourly); SQLite only: InfluxDB applies its retention policy' },
  { name: 'VPP_RETENTION_ROLLUPS_1M_DAYS', fallback: '2', description: '1-minute rollups kept this long; 15-minute and 1-hour rollups keep the history; SQLite only' },
  { name: 'VPP_RETENTION_ROLLUPS_15M_DAYS', fallback: '400', description: '15-minute rollups kept this long; 1-hour rollups are kept forever; SQLite only' },
  { name: 'VPP_RETENTION_DEAD_LETTER_DAYS', fallback: '7', description: 'dead letters older than this are deleted (hourly)' },
  { name: 'VPP_ALERT_RULES', fallback: 'cli/alert-rules.default.yaml', description: 'alert rules file, YAML or JSON (see "Alerts" in README.md)' },
  { name: 'VPP_ALERT_STARTUP_GRACE_SECONDS', fallback: '60', description: 'after a start, offline and stale rules do not fire and site/region/fleet rules wait this long, while devices reconnect' },
  { name: 'VPP_ALERT_WEBHOOK_URL', fallback: 'none', description: 'signed webhook receiving every alert transition' },
  { name: 'VPP_ALERT_WEBHOOK_SECRET', fallback: 'none (required with the URL)', description: 'HMAC-SHA256 key of the webhook signature (at least 16 characters)' },
  { name: 'VPP_SLACK_WEBHOOK_URL', fallback: 'none', description: 'Slack incoming webhook for alert transitions' },
  { name: 'VPP_PAGERDUTY_ROUTING_KEY', fallback: 'none', description: 'PagerDuty Events API v2 routing key: alerts trigger, acknowledge and resolve incidents' },
  { name: 'VPP_PAGERDUTY_URL', fallback: 'https://events.pagerduty.com/v2/enqueue', description: 'PagerDuty Events API endpoint' },
  { name: 'VPP_ALERTMANAGER_URL', fallback: 'none', description: 'Prometheus Alertmanager base URL: open alerts are posted and re-sent, resolutions end them' },
  { name: 'VPP_RETENTION_ALERT_DAYS', fallback: '90', description: 'resolved alerts older than this are deleted (hourly)' },
  { name: 'VPP_SIM_FAULTS', fallback: 'none', description: 'faults to inject into the simulated fleet, kind:target@seconds[-end], comma-separated (see "Simulator faults" in README.md)' },
  { name: 'VPP_TLS_CERT', fallback: 'none', description: 'PEM certificate file: with VPP_TLS_KEY, the API serves HTTPS and the broker also listens for MQTT over TLS' },
  { name: 'VPP_TLS_KEY', fallback: 'none', description: 'PEM private key file of VPP_TLS_CERT' },
  { name: 'VPP_MQTTS_PORT', fallback: '8883', description: 'MQTT over TLS, when a certificate is configured' },
  { name: 'VPP_MQTT_MAX_CONNECTIONS_PER_ADDRESS', fallback: '1000', description: 'concurrent MQTT connections from one address; more are refused' },
  { name: 'VPP_MQTT_MAX_CONNECTIONS', fallback: '100000', description: 'concurrent MQTT connections in total; more are refused' },
  { name: 'VPP_MQTT_MAX_AUTH_FAILURES', fallback: '20', description: 'failed CONNECTs per device id within a minute (slowed down from the fourth) before the rest of the minute is refused' },
  { name: 'VPP_MQTT_MAX_AUTH_FAILURES_PER_ADDRESS', fallback: '100', description: 'the same per source address (a site\'s devices may share one)' },
  { name: 'VPP_HTTP_REQUESTS_PER_TOKEN_PER_MINUTE', fallback: '600', description: 'API requests per token per minute; beyond, 429 with Retry-After' },
  { name: 'VPP_HTTP_REQUESTS_PER_ADDRESS_PER_MINUTE', fallback: '1200', description: 'API requests per address per minute; beyond, 429 with Retry-After' },
  { name: 'VPP_HTTP_FAILED_AUTH_PER_ADDRESS_PER_MINUTE', fallback: '30', description: 'requests with a missing or bad token per address per minute; beyond, 429 before the token is even checked' },
  { name: 'VPP_CORS_ORIGINS', fallback: 'none (CORS closed)', description: 'comma-separated web origins allowed to call the API from a browser' },
  { name: 'VPP_RETENTION_AUDIT_DAYS', fallback: '365', description: 'audit records older than this are deleted (hourly)' },
  { name: 'VPP_STREAM_MAX_CLIENTS', fallback: '10000', description: 'concurrent live-stream (SSE) connections per control process; more get 503' },
  { name: 'VPP_STREAM_MAX_CLIENTS_PER_TOKEN', fallback: '100', description: 'concurrent live-stream connections of one API token; more get 429, so one client cannot take every place' },
  { name: 'VPP_STREAM_HEARTBEAT_SECONDS', fallback: '15', description: 'heartbeat comment interval on idle live streams (keeps proxies from closing them)' },
  { name: 'VPP_STREAM_MIN_INTERVAL_MS', fallback: '1000', description: 'a live stream sends each site, region and fleet aggregate at most once per this interval' },
  { name: 'VPP_STREAM_MAX_BUFFERED_KIB', fallback: '1024', description: 'a live-stream client with more unsent data than this is dropped (it reconnects and resumes)' },
  { name: 'VPP_DASHBOARD_DIR', fallback: 'dashboard/dist of this checkout', description: 'the built dashboard served at /' },
  { name: 'VPP_SIM_COMMAND_GRACE_SECONDS', fallback: '60', description: 'a simulated device that lost the platform for longer than this drops its command and goes back to local control' },
  { name: 'VPP_SIM_SITES', fallback: '100', description: 'simulated sites (battery, solar inverter and meter each); 0 for none' },
  { name: 'VPP_SIM_SPEED', fallback: '1', description: 'time acceleration of the simulated physics' },
  { name: 'VPP_SIM_SEED', fallback: '1', description: 'seed of the simulated fleet' },
  { name: 'VPP_SIM_INTERVAL_MS', fallback: '10000', description: 'telemetry interval per device, in simulated time' },
  { name: 'VPP_SIM_REGIONS', fallback: 'north,south,east,west', description: 'comma-separated regions the sites are spread over' },
  { name: 'VPP_SIM_QOS', fallback: '1', description: 'QoS of simulated telemetry (0 or 1)' },
];

export function loadConfig(env: Env = process.env, defaults: { ingestSource?: 'tap' | 'mqtt' } = {}): Readonly<Config> {
  const r: Reader = { problems: [], env };
  const mqttPort = int(r, 'VPP_MQTT_PORT', 1883, 0, 65535);
  const regions = (str(r, 'VPP_SIM_REGIONS') ?? 'north,south,east,west').split(',').map((s) => s.trim()).filter(Boolean);
  if (regions.length === 0) r.problems.push('VPP_SIM_REGIONS must name at least one region');
  for (const region of regions) {
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(region)) r.problems.push(`VPP_SIM_REGIONS: "${region}" must be lower-case letters, digits and dashes`);
  }
  const mqttUrl = str(r, 'VPP_MQTT_URL') ?? `mqtt://127.0.0.1:${mqttPort}`;
  if (!/^mqtts?:\/\/[^/]+$/.test(mqttUrl)) r.problems.push(`VPP_MQTT_URL=${JSON.stringify(mqttUrl)} must look like mqtt://host:port`);

  const mqttsPort = int(r, 'VPP_MQTTS_PORT', 8883, 0, 65535);
  const rulesFile = str(r, 'VPP_ALERT_RULES') ?? DEFAULT_ALERT_RULES_FILE;
  const webhookUrl = url(r, 'VPP_ALERT_WEBHOOK_URL');
  const webhookSecret = secret(r, 'VPP_ALERT_WEBHOOK_SECRET');
  if (webhookUrl !== undefined && webhookSecret === undefined) r.problems.push('VPP_ALERT_WEBHOOK_SECRET is required with VPP_ALERT_WEBHOOK_URL (receivers verify the signature)');
  const slackUrl = url(r, 'VPP_SLACK_WEBHOOK_URL');
  const pagerdutyKey = str(r, 'VPP_PAGERDUTY_ROUTING_KEY');
  const pagerdutyUrl = url(r, 'VPP_PAGERDUTY_URL') ?? 'https://events.pagerduty.com/v2/enqueue';
  const alertmanagerUrl = url(r, 'VPP_ALERTMANAGER_URL');
  const timeSeriesStore = oneOf(r, 'VPP_STORE', 'sqlite', ['sqlite', 'influxdb']);
  const influx = influxSettings(r, timeSeriesStore);

  const config: Config = {
    host: str(r, 'VPP_HOST') ?? '127.0.0.1',
    httpPort: int(r, 'VPP_HTTP_PORT', 8080, 0, 65535),
    mqttPort,
    metricsPort: int(r, 'VPP_METRICS_PORT', 9464, 0, 65535),
    mqttUrl,
    dataDir: str(r, 'VPP_DATA_DIR') ?? './data',
    timeSeriesStore,
    influx,
    adminToken: secret(r, 'VPP_ADMIN_TOKEN'),
    ingestSecret: secret(r, 'VPP_INGEST_SECRET'),
    controlSecret: secret(r, 'VPP_CONTROL_SECRET'),
    observerSecret: secret(r, 'VPP_OBSERVER_SECRET'),
    dispatchSecret: secret(r, 'VPP_DISPATCH_SECRET'),
    secretGraceMs: int(r, 'VPP_SECRET_GRACE_SECONDS', 86_400, 0, 365 * 86_400) * 1_000,
    shutdownTimeoutMs: int(r, 'VPP_SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
    logLevel: oneOf(r, 'VPP_LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    ingest: {
      source: oneOf(r, 'VPP_INGEST_SOURCE', defaults.ingestSource ?? 'tap', ['tap', 'mqtt']),
      maxBatchMessages: int(r, 'VPP_INGEST_BATCH_MESSAGES', 5000, 1, 100_000),
      maxBatchDelayMs: int(r, 'VPP_INGEST_BATCH_DELAY_MS', 50, 1, 60_000),
      maxInflight: int(r, 'VPP_INGEST_MAX_INFLIGHT', 20_000, 1, 1_000_000),
      maxFutureMs: int(r, 'VPP_INGEST_MAX_FUTURE_MS', 300_000, 0, 86_400_000),
      maxAgeMs: int(r, 'VPP_INGEST_MAX_AGE_MS', 30 * 86_400_000, 60_000, 3650 * 86_400_000),
      rollupLatenessMs: int(r, 'VPP_ROLLUP_LATENESS_MS', 10_000, 0, 3_600_000),
      liveWindowMs: int(r, 'VPP_LIVE_WINDOW_MS', 60_000, 1_000, 86_400_000),
      liveIntervalMs: int(r, 'VPP_LIVE_INTERVAL_MS', 1_000, 100, 3_600_000),
      maxMetricsPerDevice: int(r, 'VPP_INGEST_MAX_METRICS_PER_DEVICE', 64, 1, 10_000),
      stallAfterMs: int(r, 'VPP_INGEST_STALL_AFTER_MS', 30_000, 100, 3_600_000),
      deadLettersPerDevicePerMinute: int(r, 'VPP_DEAD_LETTERS_PER_DEVICE_PER_MINUTE', 10, 0, 100_000),
    },
    dispatchLoopMs: int(r, 'VPP_DISPATCH_LOOP_MS', 5_000, 100, 3_600_000),
    stream: {
      maxClients: int(r, 'VPP_STREAM_MAX_CLIENTS', 10_000, 1, 1_000_000),
      maxClientsPerToken: int(r, 'VPP_STREAM_MAX_CLIENTS_PER_TOKEN', 100, 1, 1_000_000),
      heartbeatMs: Math.round(num(r, 'VPP_STREAM_HEARTBEAT_SECONDS', 15, 1, 3_600) * 1_000),
      minIntervalMs: int(r, 'VPP_STREAM_MIN_INTERVAL_MS', 1_000, 10, 3_600_000),
      maxBufferedBytes: int(r, 'VPP_STREAM_MAX_BUFFERED_KIB', 1_024, 16, 1_048_576) * 1_024,
    },
    dashboardDir: str(r, 'VPP_DASHBOARD_DIR') ?? fileURLToPath(new URL('../dashboard/dist', import.meta.url)),
    access: {
      tls: tlsFiles(r, mqttsPort),
      mqttMaxConnectionsPerAddress: int(r, 'VPP_MQTT_MAX_CONNECTIONS_PER_ADDRESS', 1_000, 1, 10_000_000),
      mqttMaxConnections: int(r, 'VPP_MQTT_MAX_CONNECTIONS', 100_000, 1, 10_000_000),
      mqttMaxAuthFailures: int(r, 'VPP_MQTT_MAX_AUTH_FAILURES', 20, 1, 1_000_000),
      mqttMaxAuthFailuresPerAddress: int(r, 'VPP_MQTT_MAX_AUTH_FAILURES_PER_ADDRESS', 100, 1, 10_000_000),
      httpRequestsPerTokenPerMinute: int(r, 'VPP_HTTP_REQUESTS_PER_TOKEN_PER_MINUTE', 600, 1, 10_000_000),
      httpRequestsPerAddressPerMinute: int(r, 'VPP_HTTP_REQUESTS_PER_ADDRESS_PER_MINUTE', 1_200, 1, 10_000_000),
      httpFailedAuthPerAddressPerMinute: int(r, 'VPP_HTTP_FAILED_AUTH_PER_ADDRESS_PER_MINUTE', 30, 1, 1_000_000),
      corsOrigins: origins(r, 'VPP_CORS_ORIGINS'),
      auditRetentionDays: num(r, 'VPP_RETENTION_AUDIT_DAYS', 365, 0.01, 36_500),
    },
    presence: {
      deviceIntervalMs: int(r, 'VPP_DEVICE_INTERVAL_MS', 10_000, 100, 86_400_000),
      staleAfterIntervals: num(r, 'VPP_STALE_AFTER_INTERVALS', 3, 1, 1_000),
    },
    deadLetters: {
      maxPayloadBytes: int(r, 'VPP_DEAD_LETTER_MAX_PAYLOAD_BYTES', 4_096, 0, 262_144),
      maxTotalMb: num(r, 'VPP_DEAD_LETTER_MAX_MB', 64, 1, 1_000_000),
    },
    retention: {
      telemetryDays: num(r, 'VPP_RETENTION_TELEMETRY_DAYS', 7, 0.01, 36_500),
      rollups1mDays: num(r, 'VPP_RETENTION_ROLLUPS_1M_DAYS', 2, 0.01, 36_500),
      rollups15mDays: num(r, 'VPP_RETENTION_ROLLUPS_15M_DAYS', 400, 0.01, 36_500),
      deadLetterDays: num(r, 'VPP_RETENTION_DEAD_LETTER_DAYS', 7, 0.01, 36_500),
    },
    alerts: {
      rulesFile,
      rules: alertRules(r, rulesFile),
      retentionDays: num(r, 'VPP_RETENTION_ALERT_DAYS', 90, 0.01, 36_500),
      startupGraceSeconds: num(r, 'VPP_ALERT_STARTUP_GRACE_SECONDS', 60, 0, 86_400),
      webhook: webhookUrl !== undefined && webhookSecret !== undefined ? { url: webhookUrl, secret: webhookSecret } : undefined,
      slack: slackUrl !== undefined ? { url: slackUrl } : undefined,
      pagerduty: pagerdutyKey !== undefined ? { routingKey: pagerdutyKey, url: pagerdutyUrl } : undefined,
      alertmanager: alertmanagerUrl !== undefined ? { url: alertmanagerUrl.replace(/\/+$/, '') } : undefined,
    },
    sim: {
      sites: int(r, 'VPP_SIM_SITES', 100, 0, 100_000),
      speed: num(r, 'VPP_SIM_SPEED', 1, 0.001, 1_000_000),
      seed: int(r, 'VPP_SIM_SEED', 1, 0, 2 ** 31 - 1),
      telemetryIntervalMs: int(r, 'VPP_SIM_INTERVAL_MS', 10_000, 1, 86_400_000),
      regions,
      qos: int(r, 'VPP_SIM_QOS', 1, 0, 1) as 0 | 1,
      faults: str(r, 'VPP_SIM_FAULTS') ?? '',
      commandGraceMs: num(r, 'VPP_SIM_COMMAND_GRACE_SECONDS', 60, 0, 86_400) * 1_000,
    },
  };
  if (config.retention.rollups15mDays < config.retention.rollups1mDays) {
    r.problems.push('VPP_RETENTION_ROLLUPS_15M_DAYS must not be shorter than VPP_RETENTION_ROLLUPS_1M_DAYS');
  }
  const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
  for (const name of Object.keys(env)) {
    if (name.startsWith('VPP_') && !known.has(name)) r.problems.push(`${name} is not a known setting (known: ${[...known].join(', ')})`);
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return deepFreeze(config);
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  // Bytes (the TLS certificate and key) cannot be frozen; nothing hands them out to change anyway.
  for (const inner of Object.values(value)) if (inner && typeof inner === 'object' && !ArrayBuffer.isView(inner)) deepFreeze(inner as object);
  return Object.freeze(value);
}
