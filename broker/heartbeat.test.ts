import { afterEach, describe, expect, it } from 'vitest';
import { BROKER_HEALTH_TOPIC, SERVICE_HEALTH_FILTER, ServiceHealthCheck, type ServiceHealth } from '../protocol/index.ts';
import { collectMessages, startTestBed, subscribeGranted, TestClock, waitUntil, type TestBed } from './test-helpers.ts';

function parseHealth(payload: string): ServiceHealth {
  const health: unknown = JSON.parse(payload);
  if (!ServiceHealthCheck.Check(health)) throw new Error(`not a service health message: ${payload}`);
  return health;
}

describe('broker heartbeat', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  it('is retained on the broker health topic from the start, with the start time', async () => {
    const clock = new TestClock();
    const startedAtMs = clock.nowMs;
    // Long enough that only the heartbeat published at start can arrive here.
    bed = await startTestBed({ clock: clock.now, heartbeatIntervalMs: 600_000 });
    expect(bed.broker.startedAtMs).toBe(startedAtMs);
    clock.advance(5_000);

    const ingest = await bed.connectService('vpp-ingest');
    const received = collectMessages(ingest);
    expect(await subscribeGranted(ingest, BROKER_HEALTH_TOPIC)).toEqual([1]);
    await waitUntil(() => received.length === 1, 'the retained heartbeat arrived');
    expect(received[0]).toMatchObject({ topic: BROKER_HEALTH_TOPIC, retain: true });
    const health = parseHealth(received[0]!.payload);
    expect(health).toMatchObject({ service: 'broker', ts: startedAtMs, ok: true, startedAtMs });
    expect(health.counters).toMatchObject({ socketsOpened: 0, connectionsAccepted: 0, clientsConnected: 0 });
  });

  it('is published again every interval, with the current counters', async () => {
    const clock = new TestClock();
    const startedAtMs = clock.nowMs;
    bed = await startTestBed({ clock: clock.now, heartbeatIntervalMs: 10 });
    const control = await bed.connectService('vpp-control');
    const received = collectMessages(control);
    expect(await subscribeGranted(control, SERVICE_HEALTH_FILTER)).toEqual([1]);
    await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));

    clock.advance(2_000);
    await waitUntil(
      () => received.some((message) => parseHealth(message.payload).ts === startedAtMs + 2_000),
      'a heartbeat at the advanced clock arrived',
    );
    const latest = parseHealth(received.at(-1)!.payload);
    expect(latest).toMatchObject({ service: 'broker', ok: true, startedAtMs });
    expect(latest.counters).toMatchObject({ connectionsAccepted: 2, clientsConnected: 2 });
    // The whole snapshot, every counter by its name.
    expect(Object.keys(latest.counters).sort()).toEqual(Object.keys(bed.broker.counters()).sort());
  });
});
