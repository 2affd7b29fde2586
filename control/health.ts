/**
 * Health and readiness of the platform as control sees it: the broker (its
 * own MQTT connection), the pipeline (ingest's heartbeat) and the store.
 * `evaluateHealth` is a pure function of what the caller gathered, so the
 * same verdict serves /healthz, /readyz and tests, with no clock or I/O.
 */
import type { ServiceHealth } from '../protocol/index.ts';
import type { TelemetryStore } from '../store/types.ts';
import type { ComponentHealth, HealthCheck, HealthReport, PipelineFigures } from './deps.ts';
import { isoTime } from './presenters/device.ts';

export interface HealthInputs {
  /** Latest heartbeat of ingest (`live.getServiceHealth('ingest')`); undefined before the first one. */
  serviceHealth: ServiceHealth | undefined;
  /** Whether control's own MQTT client is connected to the broker. */
  brokerConnected: boolean;
  /** Outcome of the store's own check, already awaited (see checkStoreHealth). */
  storeCheck: ComponentHealth;
  /** Milliseconds since the Unix epoch. */
  nowMs: number;
  /** A heartbeat at least this old means ingest is gone or cut off. */
  heartbeatGraceMs: number;
}

/**
 * The report behind /healthz and /readyz. Components: `broker` (connected),
 * `pipeline` (a fresh heartbeat from ingest that says it is fine and not
 * stalled) and `store`. A stalled pipeline is unhealthy even when ingest
 * still reports `ok`: messages wait and nothing commits. `pipeline` carries
 * the heartbeat's figures whenever there is a heartbeat, fresh or not.
 */
export function evaluateHealth(inputs: HealthInputs): HealthReport {
  const { serviceHealth: heartbeat, nowMs, storeCheck } = inputs;
  const components: Record<string, ComponentHealth> = {
    broker: inputs.brokerConnected ? { ok: true } : { ok: false, detail: 'not connected to the broker' },
    pipeline: evaluatePipeline(heartbeat, nowMs, inputs.heartbeatGraceMs),
    store: storeCheck.ok
      ? { ok: true, ...(storeCheck.detail === undefined ? {} : { detail: storeCheck.detail }) }
      : { ok: false, detail: storeCheck.detail ?? 'unavailable' },
  };
  const report: HealthReport = { ok: Object.values(components).every((c) => c.ok), components };
  if (heartbeat) report.pipeline = pipelineFigures(heartbeat, nowMs);
  return report;
}

function evaluatePipeline(heartbeat: ServiceHealth | undefined, nowMs: number, graceMs: number): ComponentHealth {
  if (!heartbeat) return { ok: false, detail: 'no heartbeat from ingest' };
  const ageMs = nowMs - heartbeat.ts;
  if (ageMs >= graceMs) {
    return { ok: false, detail: `last heartbeat from ingest ${ageMs} ms ago, more than the ${graceMs} ms allowed` };
  }
  const pipeline = heartbeat.pipeline;
  if (pipeline?.stalled) {
    const oldest = pipeline.oldestUnackedAgeMs === null ? 'unknown' : `${pipeline.oldestUnackedAgeMs} ms`;
    const lastCommit =
      pipeline.lastCommitAtMs === null
        ? 'nothing committed since ingest started'
        : `last commit at ${isoTime(pipeline.lastCommitAtMs)} (${heartbeat.ts - pipeline.lastCommitAtMs} ms before the heartbeat)`;
    return {
      ok: false,
      detail: `pipeline stalled: ${pipeline.inflight} messages in flight, the oldest unacknowledged for ${oldest}; ${lastCommit}`,
    };
  }
  if (!heartbeat.ok) return { ok: false, detail: heartbeat.detail ?? 'ingest reports itself unhealthy' };
  return { ok: true };
}

function pipelineFigures(heartbeat: ServiceHealth, nowMs: number): PipelineFigures {
  const figures: PipelineFigures = { heartbeatAt: isoTime(heartbeat.ts), heartbeatAgeMs: Math.max(0, nowMs - heartbeat.ts) };
  const pipeline = heartbeat.pipeline;
  if (!pipeline) return figures;
  return {
    ...figures,
    inflight: pipeline.inflight,
    oldestUnackedAgeMs: pipeline.oldestUnackedAgeMs,
    lastCommitAt: pipeline.lastCommitAtMs === null ? null : isoTime(pipeline.lastCommitAtMs),
    stalled: pipeline.stalled,
  };
}

/** Runs the store's check; a rejection becomes an unhealthy component with its message. */
export async function checkStoreHealth(store: Pick<TelemetryStore, 'checkHealth'>): Promise<ComponentHealth> {
  try {
    await store.checkHealth();
    return { ok: true };
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

/** Runs the health check; a failing check is itself a finding, reported like any unhealthy component. */
export async function checkHealth(health: HealthCheck): Promise<HealthReport> {
  try {
    return await health.check();
  } catch (err) {
    return { ok: false, components: { health: { ok: false, detail: `health check failed: ${(err as Error).message}` } } };
  }
}

/** What must be reported, and healthy, before the platform takes traffic. */
export const READINESS_COMPONENTS = ['broker', 'pipeline', 'store'] as const;

/**
 * Readiness from a health report: ready when the report is ok and each of
 * READINESS_COMPONENTS was reported and is ok. A component the check did
 * not report is added as not ok, so the 503 says what is missing.
 */
export function assessReadiness(report: HealthReport): HealthReport {
  const components = { ...report.components };
  for (const name of READINESS_COMPONENTS) {
    components[name] ??= { ok: false, detail: 'not reported by the health check, so not known to be ready' };
  }
  return { ...report, ok: report.ok && Object.values(components).every((c) => c.ok), components };
}
