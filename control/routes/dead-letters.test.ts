import { beforeEach, describe, expect, it } from 'vitest';
import { T0 } from '../test-fixtures.ts';
import { useControlTest } from '../test-helper.ts';

const t = useControlTest();
beforeEach(async () => {
  t.store.addDeadLetters([
    { receivedAtMs: T0 - 3000, topic: 'vpp/v1/devices/bat-1/telemetry', clientId: 'bat-1', reason: 'not-json', detail: 'Unexpected token', payload: Buffer.from('{"ts": 1,') },
    { receivedAtMs: T0 - 2000, topic: 'vpp/v1/devices/bat-1/telemetry', clientId: 'bat-1', reason: 'not-json', detail: 'binary', payload: Buffer.from([0xff, 0xfe, 0x00, 0x80]) },
    { receivedAtMs: T0 - 1000, topic: 'vpp/v1/devices/ghost/telemetry', clientId: null, reason: 'unknown-device', detail: 'ghost', payload: Buffer.from('{"ts":1,"seq":0,"metrics":{"socPct":1}}') },
  ]);
});

describe('GET /api/v1/dead-letters', () => {
  it('lists newest first with text or base64 payloads and counts by reason', async () => {
    const response = await t.request({ method: 'GET', url: '/api/v1/dead-letters' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.items.map((l: { reason: string }) => l.reason)).toEqual(['unknown-device', 'not-json', 'not-json']);
    expect(body.items[0]).toMatchObject({
      receivedAt: new Date(T0 - 1000).toISOString(),
      topic: 'vpp/v1/devices/ghost/telemetry',
      clientId: null,
      detail: 'ghost',
      payload: { encoding: 'utf8', data: '{"ts":1,"seq":0,"metrics":{"socPct":1}}', bytes: 39 },
    });
    expect(body.items[1].payload).toEqual({ encoding: 'base64', data: Buffer.from([0xff, 0xfe, 0x00, 0x80]).toString('base64'), bytes: 4 });
    expect(body.items[2].payload).toMatchObject({ encoding: 'utf8', data: '{"ts": 1,' });
    expect(body.countsByReason).toEqual({ 'not-json': 2, 'unknown-device': 1 });
    expect(body.nextBefore).toBeNull();
  });

  it('filters by reason and pages with before', async () => {
    const first = await t.request({ method: 'GET', url: '/api/v1/dead-letters?reason=not-json&limit=1' });
    const page1 = first.json();
    expect(page1.items).toHaveLength(1);
    expect(page1.items[0].detail).toBe('binary');
    expect(page1.nextBefore).toBe(page1.items[0].id);

    const second = await t.request({ method: 'GET', url: `/api/v1/dead-letters?reason=not-json&limit=1&before=${page1.nextBefore}` });
    const page2 = second.json();
    expect(page2.items.map((l: { detail: string }) => l.detail)).toEqual(['Unexpected token']);
    expect(page2.nextBefore).toBeNull();

    const bad = await t.request({ method: 'GET', url: '/api/v1/dead-letters?limit=5000' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^limit: /);
  });
});
