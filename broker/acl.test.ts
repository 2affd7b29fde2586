import { afterEach, describe, expect, it } from 'vitest';
import { REVOCATIONS_TOPIC, deviceTopic } from '../protocol/index.ts';
import { collectMessages, nextEvent, startTestBed, subscribeGranted, waitUntil, type TestBed } from './test-helpers.ts';

describe('broker authorization', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  it("closes a device that publishes on another device's telemetry, and nobody receives it", async () => {
    bed = await startTestBed();
    const intruder = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const victim = await bed.connectDevice('bat-2', bed.credentials.add('bat-2'));
    const observer = await bed.connectService('vpp-ingest');
    const seen = collectMessages(observer);
    expect(await subscribeGranted(observer, 'vpp/v1/devices/+/telemetry')).toEqual([1]);

    const closed = nextEvent(intruder, 'close');
    intruder.publish(deviceTopic('bat-2', 'telemetry'), '{"forged":true}', { qos: 1 });
    await closed;

    // A legitimate publish after the forged one arrives, so the forged one was not routed.
    await victim.publishAsync(deviceTopic('bat-2', 'telemetry'), '{"real":true}', { qos: 1 });
    await waitUntil(() => seen.length > 0, 'the observer received the legitimate message');
    expect(seen.map((m) => m.payload)).toEqual(['{"real":true}']);
    expect(bed.broker.counters()).toMatchObject({ unauthorizedPublishes: 1, publishesReceived: 2 });
  });

  it('closes a device that publishes on its own commands topic or outside vpp/v1', async () => {
    bed = await startTestBed();
    const secret = bed.credentials.add('bat-1');
    for (const topic of [deviceTopic('bat-1', 'commands'), REVOCATIONS_TOPIC, 'elsewhere/bat-1']) {
      const device = await bed.connectDevice('bat-1', secret);
      const closed = nextEvent(device, 'close');
      device.publish(topic, '{}', { qos: 0 });
      await closed;
    }
    expect(bed.broker.counters().unauthorizedPublishes).toBe(3);
  });

  it("refuses a subscription to another device's commands with 0x80 and keeps the connection", async () => {
    bed = await startTestBed();
    bed.credentials.add('bat-2');
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    expect(await subscribeGranted(device, deviceTopic('bat-2', 'commands'))).toEqual([128]);
    expect(await subscribeGranted(device, 'vpp/v1/devices/+/commands')).toEqual([128]);
    expect(await subscribeGranted(device, deviceTopic('bat-1', 'telemetry'))).toEqual([128]);
    expect(device.connected).toBe(true);
    expect(bed.broker.counters().unauthorizedSubscriptions).toBe(3);
  });

  it('lets a device subscribe to its own commands and receive what a service publishes there', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const received = collectMessages(device);
    expect(await subscribeGranted(device, deviceTopic('bat-1', 'commands'))).toEqual([1]);

    const control = await bed.connectService('vpp-control');
    await control.publishAsync(deviceTopic('bat-1', 'commands'), '{"id":"c1"}', { qos: 1 });
    await waitUntil(() => received.length === 1, 'the device received its command');
    expect(received[0]).toMatchObject({ topic: deviceTopic('bat-1', 'commands'), payload: '{"id":"c1"}' });
    expect(bed.broker.counters().unauthorizedSubscriptions).toBe(0);
  });

  it('keeps service accounts under vpp/v1/', async () => {
    bed = await startTestBed();
    const service = await bed.connectService('vpp-ingest');
    expect(await subscribeGranted(service, 'vpp/v1/#')).toEqual([1]);
    expect(await subscribeGranted(service, '#')).toEqual([128]);
    expect(await subscribeGranted(service, '$SYS/#')).toEqual([128]);
    await service.publishAsync('vpp/v1/platform/health/ingest', '{}', { qos: 1 });
    expect(service.connected).toBe(true);

    const closed = nextEvent(service, 'close');
    service.publish('other/topic', '{}', { qos: 1 });
    await closed;
    expect(bed.broker.counters()).toMatchObject({ unauthorizedSubscriptions: 2, unauthorizedPublishes: 1 });
  });
});
