/**
 * What the control API needs from the rest of the platform. Everything is
 * passed in, so the same app runs in one process (`vpp up`), as its own
 * process, and in tests with real stores and a controlled clock.
 */
import type { Logger } from 'pino';
import type { SchedulerLike } from 'rxjs';
import type { AggregateLevel, AggregateSnapshot, AlertEvent, AlertRulesConfig, DispatchRequest, ServiceHealth } from '../protocol/index.ts';
import type {
  AlertOutbox,
  AlertStore,
  AuditStore,
  CommandStore,
  DeadLetterStore,
  DispatchPlanRecord,
  DispatchStore,
  Registry,
  StoredCommand,
  StoredDispatch,
  TelemetryStore,
  TokenStore,
  TwinStore,
} from '../store/types.ts';

/** Latest live aggregates, as published retained by ingest on AGGREGATES_FILTER. */
export interface LiveView {
  getAggregate(level: AggregateLevel, id: string): AggregateSnapshot | undefined;
  /** Every known aggregate of one level, in id order. */
  listAggregates(level: AggregateLevel): AggregateSnapshot[];
  /** The latest heartbeat of every platform service, in name order. */
  listServiceHealth(): ServiceHealth[];
  /**
   * Calls `listener` with every aggregate the view takes from now on (not
   * the stale or rejected ones), synchronously; returns the unsubscribe.
   * A listener that throws is logged by nobody: it must not throw.
   */
  onAggregate(listener: (snapshot: AggregateSnapshot) => void): () => void;
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

/** An operator's dispatch as checked by the API: the target exists, the figures are in range. */
export type { DispatchRequest };

/** A plan with what each battery would be asked (device id → W). */
export type DispatchPlan = DispatchPlanRecord & { setpoints: Record<string, number> };

/**
 * Planning and running dispatches. The planner and the control loop live
 * outside control (which may not import them), so the process passes them
 * in through this port. Contract:
 *
 * - `plan` is pure as far as the platform is concerned: it reads the fleet
 *   as it is now and sends and stores nothing.
 * - `create` plans, then stores the dispatch `scheduled` with that plan and
 *   its setpoints, and wakes the control loop (which starts it at
 *   `startAtMs`). When the plan is not feasible and `allowPartial` is false
 *   it stores nothing and throws InfeasibleDispatchError (control/errors.ts)
 *   with the plan; the API answers that as a 409 showing the plan.
 * - `cancel` moves a scheduled or active dispatch to `cancelled` and sends
 *   every battery it dispatched back to local control, as commands carrying
 *   the dispatch id. Throws StoreError 'not-found' for an unknown id and
 *   'conflict' for a dispatch already completed, cancelled or failed.
 *
 * All three run synchronously on the caller's request; none may wait for a
 * device.
 */
export interface Dispatcher {
  /** What the fleet can do for the request now, sending nothing. */
  plan(request: DispatchRequest): DispatchPlan;
  /** Plans and stores the dispatch (scheduled) and wakes the control loop; see the contract above. */
  create(request: DispatchRequest): StoredDispatch;
  /** Cancels a scheduled or active dispatch and sends its batteries back to local control; see the contract above. */
  cancel(id: string): StoredDispatch;
}

/**
 * Limits and CORS of the HTTP door. Every field is optional; absent ones
 * take DEFAULT_ACCESS (plugins/access.ts). Counted per process, in memory,
 * over fixed one-minute windows.
 */
export interface AccessOptions {
  /** Requests per minute of one token, by its id (the bootstrap token is one token). Default 600. */
  rateLimitPerMinute?: number;
  /** Requests per minute from one address under /api/v1, with a valid token or not. Default 1200. */
  rateLimitPerAddressPerMinute?: number;
  /**
   * Failed authentications (a token that is unknown, revoked or expired)
   * per minute from one address; once reached, every request from it is a
   * 429 before its token is looked at, until the minute is over. Default 30.
   */
  failedAuthPerAddressPerMinute?: number;
  /**
   * Origins (`https://ops.example.com`, scheme, host and port, no path) whose
   * pages may call the API from a browser. Default none: no CORS header is
   * sent, so browsers keep other origins out.
   */
  corsOrigins?: readonly string[];
}

/** The live stream's bounds and rates; each absent field takes its default (DEFAULT_STREAM). */
export interface StreamOptions {
  /** Most concurrent stream connections of this process (10 000); more get 503. */
  maxClients?: number;
  /** Most concurrent stream connections of one token (100), so one client cannot take every place; more get 429. */
  maxClientsPerToken?: number;
  /** Heartbeat comment interval (15 000 ms). */
  heartbeatMs?: number;
  /** Most one aggregate per entity per this interval (1 000 ms), whatever the telemetry rate. */
  minIntervalMs?: number;
  /** How often watched devices, sites, dispatches and alerts are read for changes (1 000 ms). */
  pollMs?: number;
  /** How often the sites table's changed rows are sent (5 000 ms). */
  sitesIntervalMs?: number;
  /** A client whose unsent backlog grows beyond this is dropped (1 MiB). */
  maxBufferedBytes?: number;
  /** Newest events each topic holds for resuming clients (256, and 4 MiB). */
  historyPerTopic?: number;
  historyBytesPerTopic?: number;
  /** How long a topic holds its events after its last client left (60 000 ms). */
  topicGraceMs?: number;
  /** Virtual time in tests. */
  scheduler?: SchedulerLike;
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
  /** Dispatches as stored, with their tracking samples; read by the API, written through `dispatcher`. */
  dispatches: DispatchStore;
  /** Plans, creates and cancels dispatches (the planner and control loop of the process). */
  dispatcher: Dispatcher;
  live: LiveView;
  revocations: Revocations;
  health: HealthCheck;
  /**
   * How long a device's previous secret stays accepted after its secret was
   * rotated, so the device can pick up the new one without losing its
   * connection. A non-negative integer; 0 ends the old secret at once.
   */
  secretGraceMs: number;
  /**
   * The configured bearer token: role admin, named `bootstrap` in the audit
   * log; at least 16 characters. It creates the other tokens.
   */
  adminToken: string;
  /** API tokens (`vpp_…`), looked up by hashTokenSecret of the bearer token on every request. */
  tokens: TokenStore;
  /**
   * Where the audit log is appended (in batches, after the responses) and
   * read by GET /api/v1/audit. Retention is the caller's: control never
   * deletes a record; the process calls `pruneAudit` on its own schedule.
   */
  audit: AuditStore;
  /** Rate limits, the failed-authentication throttle and CORS; defaults when absent (see AccessOptions). */
  access?: AccessOptions;
  /** Bounds and rates of the live stream (GET /api/v1/stream); defaults when absent (see StreamOptions). */
  stream?: StreamOptions;
  /**
   * The built dashboard (index.html, assets/, manifest.json) served at `/`;
   * without it `/` answers 404 and only the API is served.
   */
  dashboardDir?: string;
  /** Milliseconds since the Unix epoch. */
  clock: () => number;
  logger: Logger;
}
