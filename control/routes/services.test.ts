/** GET /api/v1/services: the services' heartbeats with their counters, behind the token. */
import { describe, expect, it } from 'vitest';
import { encodeJson, serviceHealthTopic, type ServiceHealth } from '../../protocol/index.ts';
import { useControlTest } from '../test-helper.ts';

const t = useControlTest();

describe('GET /api/v1/services', () => {
  it('lists each service heartbeat, counters and pipeline liveness included', async () => {
    const ingest: ServiceHealth = {
      service: 'ingest',
      ts: 1_000,
      ok: false,
      detail: 'stalled',
      startedAtMs: 500,
      pipeline: { inflight: 3, oldestUnackedAgeMs: 40_000, lastCommitAtMs: null, stalled: true },
      counters: { received: 10, deadLettersSuppressed: 2 },
    };
    const broker: ServiceHealth = { service: 'broker', ts: 1_000, ok: true, startedAtMs: 100, counters: { connectionsRefused: 4 } };
    t.live.apply(serviceHealthTopic('ingest'), encodeJson(ingest));
    t.live.apply(serviceHealthTopic('broker'), encodeJson(broker));
    const response = await t.request({ method: 'GET', url: '/api/v1/services' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ services: [broker, ingest] });
  });

  it('needs the token', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/api/v1/services' });
    expect(response.statusCode).toBe(401);
  });
});
