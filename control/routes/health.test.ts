import { describe, expect, it } from 'vitest';
import { encodeJson, serviceHealthTopic, type ServiceHealth } from '../../protocol/index.ts';
import type { ComponentHealth } from '../deps.ts';
import { checkStoreHealth, evaluateHealth } from '../health.ts';
import { T0 } from '../test-fixtures.ts';
import { useControlTest } from '../test-helper.ts';

const t = useControlTest();
const GRACE_MS = 10_000;

/** Feeds an ingest heartbeat to the live view as the MQTT message it would be. */
function publishHeartbeat(pipeline: NonNullable<ServiceHealth['pipeline']>, ts = T0 - 500): void {
  const heartbeat: ServiceHealth = { service: 'ingest', ts, ok: true, startedAtMs: T0 - 60_000, pipeline, counters: { received: 10 } };
  t.live.apply(serviceHealthTopic('ingest'), encodeJson(heartbeat));
}

/** The health check as a deployment wires it: the live view's heartbeat, the broker connection and the real store. */
function useEvaluatedHealth(brokerConnected = true): { storeCheck: ComponentHealth } {
  const state: { storeCheck: ComponentHealth } = { storeCheck: { ok: true } };
  t.health.report = () =>
    evaluateHealth({
      serviceHealth: t.live.getServiceHealth('ingest'),
      brokerConnected,
      storeCheck: state.storeCheck,
      nowMs: t.clock.nowMs,
      heartbeatGraceMs: GRACE_MS,
    });
  return state;
}

const RUNNING = { inflight: 2, oldestUnackedAgeMs: 15, lastCommitAtMs: T0 - 600, stalled: false };
const STALLED = { inflight: 800, oldestUnackedAgeMs: 42_000, lastCommitAtMs: T0 - 50_000, stalled: true };

describe('GET /readyz', () => {
  it('answers 200 without a token when broker, store and a fresh heartbeat are all fine', async () => {
    const state = useEvaluatedHealth();
    state.storeCheck = await checkStoreHealth(t.store);
    publishHeartbeat(RUNNING);
    const response = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      ok: true,
      components: { broker: { ok: true }, pipeline: { ok: true }, store: { ok: true } },
      pipeline: {
        heartbeatAt: new Date(T0 - 500).toISOString(),
        heartbeatAgeMs: 500,
        inflight: 2,
        oldestUnackedAgeMs: 15,
        lastCommitAt: new Date(T0 - 600).toISOString(),
        stalled: false,
      },
    });
  });

  it('answers 503 with the report when the pipeline is stalled, and /healthz does too', async () => {
    useEvaluatedHealth();
    publishHeartbeat(STALLED);
    for (const url of ['/readyz', '/healthz']) {
      const response = await t.app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(503);
      const body = response.json();
      expect(body.ok).toBe(false);
      expect(body.components.pipeline.detail, url).toMatch(/^pipeline stalled: 800 messages in flight, the oldest unacknowledged for 42000 ms; last commit at /);
      expect(body.pipeline, url).toMatchObject({ inflight: 800, oldestUnackedAgeMs: 42_000, lastCommitAt: new Date(T0 - 50_000).toISOString(), stalled: true });
    }
  });

  it('answers 503 before the first heartbeat, after the heartbeat went stale, without the broker, and with a closed store', async () => {
    useEvaluatedHealth();
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);

    publishHeartbeat(RUNNING);
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    t.clock.nowMs = T0 - 500 + GRACE_MS;
    const stale = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(stale.statusCode).toBe(503);
    expect(stale.json().components.pipeline.detail).toMatch(/^last heartbeat from ingest 10000 ms ago/);

    t.clock.nowMs = T0;
    useEvaluatedHealth(false);
    expect((await t.app.inject({ method: 'GET', url: '/readyz' })).json().components.broker).toEqual({ ok: false, detail: 'not connected to the broker' });

    const withStore = useEvaluatedHealth();
    await t.store.close();
    withStore.storeCheck = await checkStoreHealth(t.store);
    const closed = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(closed.statusCode).toBe(503);
    expect(closed.json().components.store.ok).toBe(false);
  });

  it('is stricter than /healthz: a component the check did not report is not ready', async () => {
    t.health.report = { ok: true, components: { store: { ok: true } } };
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().components).toMatchObject({ broker: { ok: false }, pipeline: { ok: false }, store: { ok: true } });
  });

  it('answers 503 when the check itself fails', async () => {
    t.health.report = () => {
      throw new Error('store closed');
    };
    const response = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json().components.health).toEqual({ ok: false, detail: 'health check failed: store closed' });
  });
});
