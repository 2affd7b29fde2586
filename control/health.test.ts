import { describe, expect, it } from 'vitest';
import type { ServiceHealth } from '../protocol/index.ts';
import { assessReadiness, checkStoreHealth, evaluateHealth, type HealthInputs } from './health.ts';
import { T0 } from './test-fixtures.ts';

const GRACE_MS = 10_000;

function heartbeat(overrides: Partial<ServiceHealth> = {}): ServiceHealth {
  return {
    service: 'ingest',
    ts: T0 - 1_000,
    ok: true,
    startedAtMs: T0 - 600_000,
    pipeline: { inflight: 3, oldestUnackedAgeMs: 40, lastCommitAtMs: T0 - 1_050, stalled: false },
    counters: {},
    ...overrides,
  };
}

function inputs(overrides: Partial<HealthInputs> = {}): HealthInputs {
  return {
    serviceHealth: heartbeat(),
    brokerConnected: true,
    storeCheck: { ok: true },
    nowMs: T0,
    heartbeatGraceMs: GRACE_MS,
    ...overrides,
  };
}

describe('evaluateHealth', () => {
  it('is healthy with a connected broker, a fresh heartbeat that is not stalled, and a working store', () => {
    expect(evaluateHealth(inputs())).toEqual({
      ok: true,
      components: { broker: { ok: true }, pipeline: { ok: true }, store: { ok: true } },
      pipeline: {
        heartbeatAt: new Date(T0 - 1_000).toISOString(),
        heartbeatAgeMs: 1_000,
        inflight: 3,
        oldestUnackedAgeMs: 40,
        lastCommitAt: new Date(T0 - 1_050).toISOString(),
        stalled: false,
      },
    });
  });

  it('turns the pipeline unhealthy when the heartbeat says stalled, even if ingest still says ok', () => {
    const report = evaluateHealth(
      inputs({ serviceHealth: heartbeat({ ok: true, pipeline: { inflight: 120, oldestUnackedAgeMs: 45_000, lastCommitAtMs: T0 - 61_000, stalled: true } }) }),
    );
    expect(report.ok).toBe(false);
    expect(report.components.pipeline).toEqual({
      ok: false,
      detail: `pipeline stalled: 120 messages in flight, the oldest unacknowledged for 45000 ms; last commit at ${new Date(T0 - 61_000).toISOString()} (60000 ms before the heartbeat)`,
    });
    expect(report.components.broker).toEqual({ ok: true });
    expect(report.pipeline).toMatchObject({ inflight: 120, oldestUnackedAgeMs: 45_000, lastCommitAt: new Date(T0 - 61_000).toISOString(), stalled: true });

    const neverCommitted = evaluateHealth(
      inputs({ serviceHealth: heartbeat({ pipeline: { inflight: 5, oldestUnackedAgeMs: null, lastCommitAtMs: null, stalled: true } }) }),
    );
    expect(neverCommitted.components.pipeline!.detail).toBe(
      'pipeline stalled: 5 messages in flight, the oldest unacknowledged for unknown; nothing committed since ingest started',
    );
    expect(neverCommitted.pipeline).toMatchObject({ lastCommitAt: null, oldestUnackedAgeMs: null });
  });

  it('is unhealthy without a heartbeat, with a stale one, or when ingest says so', () => {
    const none = evaluateHealth(inputs({ serviceHealth: undefined }));
    expect(none.ok).toBe(false);
    expect(none.components.pipeline).toEqual({ ok: false, detail: 'no heartbeat from ingest' });
    expect(none.pipeline).toBeUndefined();

    const stale = evaluateHealth(inputs({ serviceHealth: heartbeat({ ts: T0 - GRACE_MS }) }));
    expect(stale.components.pipeline).toEqual({ ok: false, detail: 'last heartbeat from ingest 10000 ms ago, more than the 10000 ms allowed' });
    expect(stale.pipeline).toMatchObject({ heartbeatAgeMs: GRACE_MS });
    expect(evaluateHealth(inputs({ serviceHealth: heartbeat({ ts: T0 - GRACE_MS + 1 }) })).ok).toBe(true);

    const sick = evaluateHealth(inputs({ serviceHealth: heartbeat({ ok: false, detail: 'store writes failing' }) }));
    expect(sick.components.pipeline).toEqual({ ok: false, detail: 'store writes failing' });
  });

  it('shows a heartbeat without pipeline figures by its time only', () => {
    const { pipeline: _omitted, ...bare } = heartbeat();
    const report = evaluateHealth(inputs({ serviceHealth: bare }));
    expect(report.ok).toBe(true);
    expect(report.pipeline).toEqual({ heartbeatAt: new Date(T0 - 1_000).toISOString(), heartbeatAgeMs: 1_000 });
  });

  it('reports a disconnected broker and a failing store', () => {
    const report = evaluateHealth(inputs({ brokerConnected: false, storeCheck: { ok: false, detail: 'SQLITE_FULL' } }));
    expect(report.ok).toBe(false);
    expect(report.components.broker).toEqual({ ok: false, detail: 'not connected to the broker' });
    expect(report.components.store).toEqual({ ok: false, detail: 'SQLITE_FULL' });
    expect(evaluateHealth(inputs({ storeCheck: { ok: false } })).components.store).toEqual({ ok: false, detail: 'unavailable' });
  });
});

describe('checkStoreHealth', () => {
  it('turns a rejection into an unhealthy component with its message', async () => {
    expect(await checkStoreHealth({ checkHealth: async () => {} })).toEqual({ ok: true });
    expect(await checkStoreHealth({ checkHealth: () => Promise.reject(new Error('disk I/O error')) })).toEqual({ ok: false, detail: 'disk I/O error' });
  });
});

describe('assessReadiness', () => {
  it('requires broker, pipeline and store to be reported and ok', () => {
    expect(assessReadiness(evaluateHealth(inputs())).ok).toBe(true);
    const partial = assessReadiness({ ok: true, components: { store: { ok: true } } });
    expect(partial.ok).toBe(false);
    expect(partial.components.broker).toEqual({ ok: false, detail: 'not reported by the health check, so not known to be ready' });
    expect(partial.components.pipeline!.ok).toBe(false);
    expect(partial.components.store).toEqual({ ok: true });
  });
});
