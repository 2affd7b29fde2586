/**
 * Storage: the ports (types.ts), the embedded SQLite implementation of all
 * of them, and the InfluxDB implementation of the time-series port
 * (influx-telemetry.ts; withTimeSeriesIn puts it beside SQLite's others).
 * The contract suites live in ./contract/index.ts, apart from this entry
 * point, because they import vitest, which production code must not load.
 */
export * from './types.ts';
export {
  DEFAULT_BUSY_TIMEOUT_MS,
  OPEN_BUSY_TIMEOUT_MS,
  SqliteStore,
  openSqliteStore,
  type SqliteStoreOptions,
} from './sqlite-store.ts';
export type { SqliteRegistry } from './sqlite-registry.ts';
export type { SqliteTelemetry } from './sqlite-telemetry.ts';
export type { SqliteTwins } from './sqlite-twins.ts';
export { MAX_DELIVERY_ERROR_CHARS, MAX_TRANSITIONS_PER_ALERT, SqliteAlerts } from './sqlite-alerts.ts';
export {
  MAX_ALERT_ID_CHARS,
  MAX_ALERT_LABEL_CHARS,
  MAX_ALERT_LABELS,
  MAX_ALERT_NOTE_CHARS,
  MAX_ALERT_SUMMARY_CHARS,
  MAX_FLAP_WINDOW_MS,
  MAX_RULE_STATE_DATA_BYTES,
} from './alert-lifecycle.ts';
export {
  MAX_COMMAND_APPLIED_BYTES,
  MAX_COMMAND_DEVICE_ID_CHARS,
  MAX_COMMAND_FAILURE_CHARS,
  MAX_COMMAND_PAGE,
  MAX_COMMAND_PARAMS_BYTES,
  MAX_DISPATCH_ID_CHARS,
  MAX_IDEMPOTENCY_KEY_CHARS,
  MAX_REQUEST_HASH_CHARS,
  MAX_TRANSITIONS_PER_COMMAND,
  SqliteCommands,
} from './sqlite-commands.ts';
export {
  MAX_DISPATCH_DURATION_MS,
  MAX_DISPATCH_EXPLANATION_CHARS,
  MAX_DISPATCH_PAGE,
  MAX_DISPATCH_POWER_W,
  MAX_DISPATCH_REASON_CHARS,
  MAX_DISPATCH_SAMPLE_PAGE,
  MAX_DISPATCH_SAMPLES,
  MAX_DISPATCH_SETPOINTS,
  MAX_DISPATCH_SITES,
  MAX_DISPATCH_TARGET_ID_CHARS,
  MAX_SETPOINT_DEVICE_ID_CHARS,
  MIN_DISPATCH_DURATION_MS,
  SqliteDispatches,
  type SqliteDispatchesOptions,
} from './sqlite-dispatches.ts';
export { SqliteTokens, TOKEN_USE_RECORD_INTERVAL_MS } from './sqlite-tokens.ts';
export {
  AUDIT_SUMMARY_CUT_KEY,
  MAX_AUDIT_ACTION_CHARS,
  MAX_AUDIT_ACTOR_CHARS,
  MAX_AUDIT_ADDRESS_CHARS,
  MAX_AUDIT_PAGE,
  MAX_AUDIT_SUMMARY_BYTES,
  MAX_AUDIT_TARGET_CHARS,
  SqliteAudit,
} from './sqlite-audit.ts';
export { DEFAULT_DEAD_LETTER_LIMITS, MAX_DEAD_LETTER_DETAIL_CHARS, type SqliteDeadLetters } from './sqlite-dead-letters.ts';
export { MIGRATIONS, SCHEMA_VERSION, migrateSchema, type Migration } from './sqlite-schema.ts';
export { DEFAULT_RETENTION, ROLLUP_TIERS, type PruneCounts, type RetentionPolicy, type RollupTierName } from './sqlite-rollups.ts';
export { generateSecret, hashSecret, hashTokenSecret, TOKEN_SECRET_HASH, verifySecret } from './credentials.ts';
export {
  DEFAULT_INFLUX_QUERY_TIMEOUT_MS,
  InfluxTelemetry,
  type InfluxCapabilities,
  type InfluxTelemetryOptions,
} from './influx-telemetry.ts';
export { DEFAULT_INFLUX_TIMEOUT_MS, logInfluxClientTo, splitBucket, type InfluxConnectionOptions } from './influx-connection.ts';
export { DEFAULT_INFLUX_WRITE_SETTINGS, type InfluxWriteSettings } from './influx-write.ts';
export {
  DEVICE_MEASUREMENTS,
  MAX_NAME_CHARS,
  MAX_TIME_MS,
  MIN_TIME_MS,
  RESERVED_METRIC_NAMES,
  ROLLUP_MEASUREMENT,
  type DescribeDevice,
  type DeviceDescription,
} from './influx-schema.ts';
export { describeDevicesFrom, withTimeSeriesIn } from './influx-composite.ts';
