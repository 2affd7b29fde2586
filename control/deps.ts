/**
 * What the control API needs from the rest of the platform. Everything is
 * passed in, so the same app runs in one process (`vpp up`), as its own
 * process, and in tests with real stores and a controlled clock.
 */
import type { Logger } from 'pino';
import type { AggregateLevel, AggregateSnapshot, AlertEvent, AlertRulesConfig, ServiceHealth } from '../protocol/index.ts';
import type { AlertOutbox, AlertStore, CommandStore, DeadLetterStore, Registry, StoredCommand, TelemetryStore, TwinStore } from '../store/types.ts';

/** Latest live aggregates, as published retained by ingest on AGGREGATES_FILTER. */
export interface LiveView {
  getAggregate(level: AggregateLevel, id: string): AggregateSnapshot | undefined;
  /** Every known aggregate of one level, in id order. */
  listAggregates(level: AggregateLevel): AggregateSnapshot[];
  /** The latest heartbeat of every platform service, in name order. */
  listServiceHealth(): ServiceHealth[];
}

export interface ComponentHealth {
  ok: boolean;
  detail?: string;
}

/** What ingest's latest heartbeat says about its pipeline (see ServiceHealth in protocol/). */
export interface PipelineFigures {
  /** When ingest sent the heartbeat, ISO 8601. */
  heartbeatAt: string;
  /** How old the heartbeat was when the report was made; the figures below are that old. */
  heartbeatAgeMs: number;
  /** The rest is absent when the heartbeat carries no pipeline figures. */
  inflight?: number;
  oldestUnackedAgeMs?: number | null;
  /** ISO 8601; null when nothing was committed since ingest started. */
  lastCommitAt?: string | null;
  stalled?: boolean;
}

export interface HealthReport {
  ok: boolean;
  components: Record<string, ComponentHealth>;
  /** Present once ingest has sent a heartbeat. */
  pipeline?: PipelineFigures;
}

export interface HealthCheck {
  /** Checks broker, pipeline and store (see evaluateHealth); may reject, which counts as unhealthy. */
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
  /** Alerts and their lifecycle; of the outbox only the delivery counts, for the operator's view. */
  alerts: AlertStore & Pick<AlertOutbox, 'countDeliveries'>;
  /** The alert rules and notification routes as loaded at start, listed as they are. */
  alertRules: AlertRulesConfig;
  /**
   * Called after an operator's acknowledgement or resolution is stored,
   * with the stored transition, so the process can wake its notifier
   * rather than wait for its next poll. Should not throw; if it does, the
   * request still succeeds (the transition is stored) and a warning is logged.
   */
  onAlertTransition: (event: AlertEvent) => void;
  /** Operators' commands to devices, and what the twin shows as desired. */
  commands: CommandStore;
  /**
   * Called after an operator's new command is stored (not for a repeated
   * request with the same idempotency key), so the process can wake its
   * command sender rather than wait for its next poll. Should not throw; if
   * it does, the request still succeeds (the command is stored) and a
   * warning is logged.
   */
  onCommandCreated: (command: StoredCommand) => void;
  live: LiveView;
  revocations: Revocations;
  health: HealthCheck;
  /**
   * How long a device's previous secret stays accepted after its secret was
   * rotated, so the device can pick up the new one without losing its
   * connection. A non-negative integer; 0 ends the old secret at once.
   */
  secretGraceMs: number;
  /** Bearer token of operators for everything under /api/v1; at least 16 characters. */
  adminToken: string;
  /** Milliseconds since the Unix epoch. */
  clock: () => number;
  logger: Logger;
}
