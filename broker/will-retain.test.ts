import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { allDevicesFilter, deviceTopic } from '../protocol/index.ts';
import { collectMessages, nextEvent, recordingTap, startTestBed, subscribeGranted, waitUntil, type TestBed } from './test-helpers.ts';

const offlineWill = {
  topic: deviceTopic('bat-1', 'status'),
  payload: Buffer.from('{"online":false}'),
  qos: 1 as const,
  retain: true,
};

describe('broker presence through retained status and last will', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  /** Connects ingest (a new session) and returns the retained statuses it is sent on subscribing. */
  async function retainedStatuses(): Promise<{ ingest: MqttClient; statuses: ReturnType<typeof collectMessages> }> {
    const ingest = await bed.connectService('vpp-ingest');
    const statuses = collectMessages(ingest);
    await subscribeGranted(ingest, allDevicesFilter('status'));
    return { ingest, statuses };
  }

  it('gives a new subscriber the retained status of a device', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'), { will: offlineWill });
    await device.publishAsync(deviceTopic('bat-1', 'status'), '{"online":true,"firmware":"1.4.2"}', {
      qos: 1,
      retain: true,
    });

    const { statuses } = await retainedStatuses();
    await waitUntil(() => statuses.length === 1, 'the retained status arrived');
    expect(statuses[0]).toEqual({
      topic: deviceTopic('bat-1', 'status'),
      payload: '{"online":true,"firmware":"1.4.2"}',
      retain: true,
    });
  });

  it('publishes the retained will when a device drops without DISCONNECT, and hands it to the tap', async () => {
    const { tap, tapped } = recordingTap();
    bed = await startTestBed({ tap });
    const secret = bed.credentials.add('bat-1');
    const device = await bed.connectDevice('bat-1', secret, { will: offlineWill });
    await device.publishAsync(deviceTopic('bat-1', 'status'), '{"online":true}', { qos: 1, retain: true });

    const observer = await retainedStatuses();
    await waitUntil(() => observer.statuses.length === 1, 'the observer saw the online status');

    device.stream.destroy();
    await waitUntil(() => observer.statuses.length === 2, 'the will was published');
    expect(observer.statuses[1]).toMatchObject({ payload: '{"online":false}' });
    expect(tapped.map((m) => [m.payload.toString('utf8'), m.isWill, m.retain])).toEqual([
      ['{"online":true}', false, true],
      ['{"online":false}', true, true],
    ]);

    await observer.ingest.endAsync();
    const late = await retainedStatuses();
    await waitUntil(() => late.statuses.length === 1, 'the retained will arrived');
    expect(late.statuses[0]).toMatchObject({ payload: '{"online":false}', retain: true });
    expect(bed.broker.counters().willsPublished).toBe(1);
  });

  it('does not publish the will after a clean DISCONNECT', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'), { will: offlineWill });
    await device.publishAsync(deviceTopic('bat-1', 'status'), '{"online":true}', { qos: 1, retain: true });

    const closed = nextEvent(device, 'close');
    await device.endAsync();
    await closed;
    await waitUntil(() => bed.broker.counters().clientsConnected === 0, 'the broker saw the disconnect');

    const { statuses } = await retainedStatuses();
    await waitUntil(() => statuses.length === 1, 'the retained status arrived');
    expect(statuses[0]).toMatchObject({ payload: '{"online":true}' });
    expect(bed.broker.counters().willsPublished).toBe(0);
  });
});
