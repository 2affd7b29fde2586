import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startControlTest, type ControlTest } from '../test-helper.ts';

let t: ControlTest;
beforeEach(async () => {
  t = await startControlTest();
});
afterEach(async () => {
  await t.close();
});

describe('GET /healthz', () => {
  it('answers 200 without a token when every component is healthy', async () => {
    t.health.report = { ok: true, components: { broker: { ok: true }, pipeline: { ok: true }, store: { ok: true, detail: 'wal' } } };
    const response = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(t.health.report);
  });

  it('answers 503 with the same body when a component is unhealthy', async () => {
    t.health.report = { ok: false, components: { broker: { ok: true }, pipeline: { ok: false, detail: 'no heartbeat for 30 s' } } };
    const response = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual(t.health.report);
  });

  it('answers 503 when the check itself fails', async () => {
    t.health.report = () => {
      throw new Error('store closed');
    };
    const response = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ ok: false, components: { health: { ok: false, detail: 'health check failed: store closed' } } });
  });
});
