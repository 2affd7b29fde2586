/**
 * What the control API needs from the rest of the platform. Everything is
 * passed in, so the same app runs in one process (`vpp up`), as its own
 * process, and in tests with real stores and a controlled clock.
 */
import type { Logger } from 'pino';
import type { AggregateLevel, AggregateSnapshot } from '../protocol/index.ts';
import type { DeadLetterStore, Registry, TelemetryStore, TwinStore } from '../store/types.ts';

/** Latest live aggregates, as published retained by ingest on AGGREGATES_FILTER. */
export interface LiveView {
  getAggregate(level: AggregateLevel, id: string): AggregateSnapshot | undefined;
  /** Every known aggregate of one level, in id order. */
  listAggregates(level: AggregateLevel): AggregateSnapshot[];
}

export interface ComponentHealth {
  ok: boolean;
  detail?: string;
}

export type HealthReport = { ok: boolean; components: Record<string, ComponentHealth> };

export interface HealthCheck {
  /** Checks broker, pipeline and store; may reject, which counts as unhealthy. */
  check(): Promise<HealthReport>;
}

export interface Revocations {
  /**
   * Asks the broker to disconnect a revoked device (over MQTT in production).
   * Resolves once the request is handed over; the registry already refuses
   * the device's next connect, so this only ends a session that is open.
   */
  revokeDevice(deviceId: string): Promise<void>;
}

export interface ControlDeps {
  registry: Registry;
  telemetry: TelemetryStore;
  twins: TwinStore;
  deadLetters: DeadLetterStore;
  live: LiveView;
  revocations: Revocations;
  health: HealthCheck;
  /** Bearer token of operators for everything under /api/v1; at least 16 characters. */
  adminToken: string;
  /** Milliseconds since the Unix epoch. */
  clock: () => number;
  logger: Logger;
}
