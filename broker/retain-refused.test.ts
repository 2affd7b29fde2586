import { afterEach, describe, expect, it } from 'vitest';
import { allDevicesFilter, deviceTopic } from '../protocol/index.ts';
import { collectMessages, nextEvent, recordingTap, roundTrip, startTestBed, subscribeGranted, waitUntil, type TestBed } from './test-helpers.ts';

describe('broker retain rule for devices', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  it('closes a device that retains on its telemetry or acks, without acknowledgement, routing or tap', async () => {
    const { tap, tapped } = recordingTap();
    bed = await startTestBed({ tap });
    const secret = bed.credentials.add('bat-1');
    const observer = await bed.connectService('vpp-ingest');
    const routed = collectMessages(observer);
    await subscribeGranted(observer, allDevicesFilter('telemetry'));

    for (const channel of ['telemetry', 'acks'] as const) {
      const device = await bed.connectDevice('bat-1', secret);
      let acknowledged = false;
      const closed = nextEvent(device, 'close');
      device.publish(deviceTopic('bat-1', channel), '{"retained":true}', { qos: 1, retain: true }, () => {
        acknowledged = true;
      });
      await closed;
      expect(acknowledged).toBe(false);
    }

    const device = await bed.connectDevice('bat-1', secret);
    await device.publishAsync(deviceTopic('bat-1', 'status'), '{"online":true}', { qos: 1, retain: true });
    await device.publishAsync(deviceTopic('bat-1', 'telemetry'), '{"retained":false}', { qos: 1 });
    await waitUntil(() => routed.length === 1, 'the unretained telemetry was routed');
    expect(routed.map((m) => m.payload)).toEqual(['{"retained":false}']);
    expect(device.connected).toBe(true);
    expect(tapped.map((m) => [m.channel, m.retain])).toEqual([
      ['status', true],
      ['telemetry', false],
    ]);
    expect(bed.broker.counters()).toMatchObject({ retainRefused: 2, unauthorizedPublishes: 0 });

    // Nothing was kept for a later subscriber either.
    await observer.endAsync();
    const late = await bed.connectService('vpp-ingest');
    const replayed = collectMessages(late);
    await subscribeGranted(late, allDevicesFilter('telemetry'));
    await roundTrip(late);
    expect(replayed).toEqual([]);
  });

  it('refuses a retained will outside the status topic with CONNACK 5, and accepts the others', async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    const will = (channel: 'telemetry' | 'acks' | 'status', retain: boolean) => ({
      topic: deviceTopic('bat-1', channel),
      payload: Buffer.from('{"online":false}'),
      qos: 1 as const,
      retain,
    });

    await expect(bed.connectDevice('bat-1', secret, { will: will('telemetry', true) })).rejects.toMatchObject({ code: 5 });
    await expect(bed.connectDevice('bat-1', secret, { will: will('acks', true) })).rejects.toMatchObject({ code: 5 });
    expect(bed.broker.counters()).toMatchObject({
      connectionsRefusedWillNotAuthorized: 2,
      connectionsRefused: 2,
      retainRefused: 2,
      connectionsAccepted: 0,
    });

    await (await bed.connectDevice('bat-1', secret, { will: will('telemetry', false) })).endAsync();
    const device = await bed.connectDevice('bat-1', secret, { will: will('status', true) });
    expect(device.connected).toBe(true);
    expect(bed.broker.counters()).toMatchObject({ connectionsAccepted: 2, retainRefused: 2 });
  });
});
