import { afterEach, describe, expect, it } from 'vitest';
import { deviceTopic } from '../protocol/index.ts';
import type { TappedPublish } from './tap.ts';
import { collectMessages, nextEvent, startTestBed, subscribeGranted, waitUntil, type TestBed } from './test-helpers.ts';

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

  it('gives a new subscriber the retained status of a device', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'), { will: offlineWill });
    await device.publishAsync(deviceTopic('bat-1', 'status'), '{"online":true,"firmware":"1.4.2"}', {
      qos: 1,
      retain: true,
    });

    const observer = await bed.connectService('vpp-control');
    const seen = collectMessages(observer);
    await subscribeGranted(observer, 'vpp/v1/devices/+/status');
    await waitUntil(() => seen.length === 1, 'the retained status arrived');
    expect(seen[0]).toEqual({
      topic: deviceTopic('bat-1', 'status'),
      payload: '{"online":true,"firmware":"1.4.2"}',
      retain: true,
    });
  });

  it('publishes the retained will when a device drops without DISCONNECT, and hands it to the tap', async () => {
    const tapped: TappedPublish[] = [];
    bed = await startTestBed({
      tap: {
        onDevicePublish(message, done) {
          tapped.push(message);
          done();
        },
      },
    });
    const secret = bed.credentials.add('bat-1');
    const device = await bed.connectDevice('bat-1', secret, { will: offlineWill });
    await device.publishAsync(deviceTopic('bat-1', 'status'), '{"online":true}', { qos: 1, retain: true });

    const observer = await bed.connectService('vpp-control');
    const live = collectMessages(observer);
    await subscribeGranted(observer, deviceTopic('bat-1', 'status'));
    await waitUntil(() => live.length === 1, 'the observer saw the online status');

    device.stream.destroy();
    await waitUntil(() => live.length === 2, 'the will was published');
    expect(live[1]).toMatchObject({ payload: '{"online":false}' });
    expect(tapped.map((m) => [m.payload.toString('utf8'), m.isWill, m.retain])).toEqual([
      ['{"online":true}', false, true],
      ['{"online":false}', true, true],
    ]);

    const late = await bed.connectService('vpp-ingest');
    const retained = collectMessages(late);
    await subscribeGranted(late, deviceTopic('bat-1', 'status'));
    await waitUntil(() => retained.length === 1, 'the retained will arrived');
    expect(retained[0]).toMatchObject({ payload: '{"online":false}', retain: true });
    expect(bed.broker.counters().willsPublished).toBe(1);
  });

  it('does not publish the will after a clean DISCONNECT', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'), { will: offlineWill });
    await device.publishAsync(deviceTopic('bat-1', 'status'), '{"online":true}', { qos: 1, retain: true });
    const observer = await bed.connectService('vpp-control');
    await subscribeGranted(observer, deviceTopic('bat-1', 'status'));

    const closed = nextEvent(device, 'close');
    await device.endAsync();
    await closed;
    await waitUntil(() => bed.broker.counters().clientsConnected === 1, 'the broker saw the disconnect');

    const late = await bed.connectService('vpp-ingest');
    const retained = collectMessages(late);
    await subscribeGranted(late, deviceTopic('bat-1', 'status'));
    await waitUntil(() => retained.length === 1, 'the retained status arrived');
    expect(retained[0]).toMatchObject({ payload: '{"online":true}' });
    expect(bed.broker.counters().willsPublished).toBe(0);
  });
});
