import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../store/index.ts';
import { DEAD_LETTER_PAGE_MAX_BYTES } from '../queries/dead-letters.ts';
import { T0 } from '../test-fixtures.ts';
import { useControlTest } from '../test-helper.ts';

const t = useControlTest();

function sha256(payload: string | Buffer): string {
  return createHash('sha256').update(payload).digest('hex');
}

/** Replaces this test's store with one that keeps payloads up to `maxPayloadBytes`. */
async function useStoreKeeping(maxPayloadBytes: number): Promise<void> {
  await t.store.close();
  t.store = openSqliteStore({ file: ':memory:', deadLetters: { maxPayloadBytes, maxTotalBytes: 64 * 1024 * 1024 } });
}
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
      payloadBytes: 39,
      payloadSha256: sha256('{"ts":1,"seq":0,"metrics":{"socPct":1}}'),
      truncated: false,
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

    const exact = await t.request({ method: 'GET', url: '/api/v1/dead-letters?reason=not-json&limit=2' });
    expect(exact.json().items).toHaveLength(2);
    expect(exact.json().nextBefore).toBeNull();

    const bad = await t.request({ method: 'GET', url: '/api/v1/dead-letters?limit=5000' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^limit: /);
  });
});

describe('GET /api/v1/dead-letters, bounded in bytes', () => {
  it('shows a cut payload with the size and hash of what was received', async () => {
    await useStoreKeeping(16);
    const received = Buffer.from(`{"metrics":{${'"socPct":1,'.repeat(100)}`);
    t.store.addDeadLetters([{ receivedAtMs: T0, topic: 'vpp/v1/devices/bat-1/telemetry', clientId: 'bat-1', reason: 'too-large', detail: 'x', payload: received }]);
    const body = (await t.request({ method: 'GET', url: '/api/v1/dead-letters' })).json();
    expect(body.items).toHaveLength(1);
    expect(body.items[0]).toMatchObject({
      payload: { encoding: 'utf8', data: received.subarray(0, 16).toString(), bytes: 16 },
      payloadBytes: received.length,
      payloadSha256: sha256(received),
      truncated: true,
    });
  });

  it('ends a page once its payloads reach the byte budget and continues it with nextBefore', async () => {
    const payloadBytes = 300_000;
    await useStoreKeeping(payloadBytes);
    t.store.addDeadLetters(
      Array.from({ length: 5 }, (_, i) => ({
        receivedAtMs: T0 + i,
        topic: 'vpp/v1/devices/bat-1/telemetry',
        clientId: 'bat-1',
        reason: 'not-json',
        detail: `letter ${i}`,
        payload: Buffer.alloc(payloadBytes, 0x61 + i),
      })),
    );
    const perPage = Math.floor(DEAD_LETTER_PAGE_MAX_BYTES / payloadBytes);
    expect(perPage).toBe(3);

    const first = await t.request({ method: 'GET', url: '/api/v1/dead-letters?limit=100' });
    const page1 = first.json();
    expect(page1.items.map((l: { detail: string }) => l.detail)).toEqual(['letter 4', 'letter 3', 'letter 2']);
    expect(page1.items.every((l: { truncated: boolean; payloadBytes: number }) => !l.truncated && l.payloadBytes === payloadBytes)).toBe(true);
    expect(page1.nextBefore).toBe(page1.items[2].id);
    expect(first.body.length).toBeLessThan(DEAD_LETTER_PAGE_MAX_BYTES + 10_000);

    const page2 = (await t.request({ method: 'GET', url: `/api/v1/dead-letters?limit=100&before=${page1.nextBefore}` })).json();
    expect(page2.items.map((l: { detail: string }) => l.detail)).toEqual(['letter 1', 'letter 0']);
    expect(page2.nextBefore).toBeNull();
  });
});
