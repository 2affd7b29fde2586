import { afterEach, describe, expect, it } from 'vitest';
import {
  ALERTS_FILTER,
  AGGREGATES_FILTER,
  BROKER_HEALTH_TOPIC,
  DEVICE_CHANNELS,
  PRESENCE_FILTER,
  REVOCATIONS_TOPIC,
  SERVICE_HEALTH_FILTER,
  SERVICE_PERMISSIONS,
  aggregateTopic,
  alertTopic,
  allDevicesFilter,
  deviceTopic,
  presenceTopic,
  serviceHealthTopic,
  type ServiceAccount,
} from '../protocol/index.ts';
import {
  collectMessages,
  nextEvent,
  roundTrip,
  startTestBed,
  subscribeGranted,
  waitUntil,
  type TestBed,
} from './test-helpers.ts';

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

  it('lets a device subscribe to its own commands topic', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    expect(await subscribeGranted(device, deviceTopic('bat-1', 'commands'))).toEqual([1]);
    expect(bed.broker.counters().unauthorizedSubscriptions).toBe(0);
  });
});

describe('broker authorization of service accounts', () => {
  let bed: TestBed;
  afterEach(async () => {
    await bed.close();
  });

  it('lets each service subscribe to exactly the filters of its permissions and to nothing else', async () => {
    bed = await startTestBed();
    const ingest = await bed.connectService('vpp-ingest');
    for (const filter of SERVICE_PERMISSIONS['vpp-ingest'].subscribe) {
      expect(await subscribeGranted(ingest, filter)).toEqual([1]);
    }
    const refusedForIngest = [
      'vpp/v1/#',
      '#',
      '$SYS/#',
      deviceTopic('bat-1', 'telemetry'),
      'vpp/v1/devices/+/+',
      allDevicesFilter('commands'),
      allDevicesFilter('acks'),
      AGGREGATES_FILTER,
    ];
    for (const filter of refusedForIngest) expect(await subscribeGranted(ingest, filter)).toEqual([128]);

    const control = await bed.connectService('vpp-control');
    for (const filter of SERVICE_PERMISSIONS['vpp-control'].subscribe) {
      expect(await subscribeGranted(control, filter)).toEqual([1]);
    }
    const refusedForControl = [allDevicesFilter('status'), PRESENCE_FILTER, aggregateTopic('fleet', ''), REVOCATIONS_TOPIC];
    for (const filter of refusedForControl) expect(await subscribeGranted(control, filter)).toEqual([128]);

    const observer = await bed.connectService('vpp-observer');
    for (const filter of [ALERTS_FILTER, AGGREGATES_FILTER, SERVICE_HEALTH_FILTER]) expect(await subscribeGranted(observer, filter)).toEqual([1]);
    const refusedForObserver = [allDevicesFilter('telemetry'), PRESENCE_FILTER, REVOCATIONS_TOPIC, 'vpp/v1/#'];
    for (const filter of refusedForObserver) expect(await subscribeGranted(observer, filter)).toEqual([128]);

    expect(ingest.connected && control.connected && observer.connected).toBe(true);
    expect(bed.broker.counters().unauthorizedSubscriptions).toBe(refusedForIngest.length + refusedForControl.length + refusedForObserver.length);
  });

  it('lets each service publish where its permissions match, and closes it anywhere else', async () => {
    bed = await startTestBed();
    const ingest = await bed.connectService('vpp-ingest');
    await ingest.publishAsync(aggregateTopic('fleet', ''), '{}', { qos: 1, retain: true });
    await ingest.publishAsync(aggregateTopic('region', 'north'), '{}', { qos: 1, retain: true });
    await ingest.publishAsync(serviceHealthTopic('ingest'), '{}', { qos: 1, retain: true });
    await ingest.publishAsync(alertTopic('battery-overheat', 'bat-1'), '{}', { qos: 1, retain: true });
    const control = await bed.connectService('vpp-control');
    await control.publishAsync(REVOCATIONS_TOPIC, '{"deviceId":"bat-9"}', { qos: 1 });
    expect(ingest.connected && control.connected).toBe(true);
    expect(bed.broker.counters()).toMatchObject({ unauthorizedPublishes: 0, publishesReceived: 5 });

    const forbidden: Array<[ServiceAccount, string]> = [
      ['vpp-ingest', serviceHealthTopic('control')],
      ['vpp-ingest', BROKER_HEALTH_TOPIC],
      ['vpp-ingest', REVOCATIONS_TOPIC],
      ['vpp-ingest', presenceTopic('bat-1')],
      ['vpp-ingest', 'vpp/v1/fleetx'],
      ['vpp-control', aggregateTopic('fleet', '')],
      ['vpp-control', serviceHealthTopic('control')],
      ['vpp-control', 'elsewhere'],
      ['vpp-control', alertTopic('battery-overheat', 'bat-1')],
      ['vpp-observer', alertTopic('battery-overheat', 'bat-1')],
      ['vpp-observer', aggregateTopic('fleet', '')],
    ];
    for (const [account, topic] of forbidden) {
      const service = await bed.connectService(account);
      const closed = nextEvent(service, 'close');
      service.publish(topic, '{}', { qos: 1 });
      await closed;
    }
    expect(bed.broker.counters().unauthorizedPublishes).toBe(forbidden.length);
  });

  it('never lets a service publish on a device topic, and nobody receives what it tried', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const commands = collectMessages(device);
    await subscribeGranted(device, deviceTopic('bat-1', 'commands'));
    const observer = await bed.connectService('vpp-ingest');
    const seen = collectMessages(observer);
    await subscribeGranted(observer, allDevicesFilter('telemetry'));
    await subscribeGranted(observer, allDevicesFilter('status'));

    for (const channel of DEVICE_CHANNELS) {
      const control = await bed.connectService('vpp-control');
      const closed = nextEvent(control, 'close');
      control.publish(deviceTopic('bat-1', channel), '{"forged":true}', { qos: 1 });
      await closed;
    }
    // The device's own publish arrives, so the forged ones before it were not routed.
    await device.publishAsync(deviceTopic('bat-1', 'telemetry'), '{"real":true}', { qos: 1 });
    await waitUntil(() => seen.length > 0, 'the observer received the device publish');
    await roundTrip(device);
    expect(seen.map((m) => m.payload)).toEqual(['{"real":true}']);
    expect(commands).toEqual([]);
    expect(bed.broker.counters().unauthorizedPublishes).toBe(DEVICE_CHANNELS.length);
  });

  it('lets the dispatch account send commands (never retained) and read acks, and nothing else on device topics', async () => {
    bed = await startTestBed();
    const device = await bed.connectDevice('bat-1', bed.credentials.add('bat-1'));
    const commands = collectMessages(device);
    await subscribeGranted(device, deviceTopic('bat-1', 'commands'));
    const dispatch = await bed.connectService('vpp-dispatch');
    const acks = collectMessages(dispatch);
    expect(await subscribeGranted(dispatch, allDevicesFilter('acks'))).toEqual([1]);
    expect(await subscribeGranted(dispatch, allDevicesFilter('telemetry'))).toEqual([128]);

    await dispatch.publishAsync(deviceTopic('bat-1', 'commands'), '{"id":"c1"}', { qos: 1 });
    await waitUntil(() => commands.length === 1, 'the device received the command');
    await device.publishAsync(deviceTopic('bat-1', 'acks'), '{"commandId":"c1","status":"accepted"}', { qos: 1 });
    await waitUntil(() => acks.length === 1, 'dispatch received the ack');

    // Retained, or on any other device channel: refused and the connection closed.
    for (const [channel, retain] of [['commands', true], ['telemetry', false], ['status', false], ['acks', false]] as const) {
      const forger = await bed.connectService('vpp-dispatch');
      const closed = nextEvent(forger, 'close');
      forger.publish(deviceTopic('bat-1', channel), '{"forged":true}', { qos: 1, retain });
      await closed;
    }
    await roundTrip(device);
    expect(commands.map((m) => m.payload)).toEqual(['{"id":"c1"}']);
    expect(bed.broker.counters()).toMatchObject({ unauthorizedPublishes: 3, retainRefused: 1 });
  });
});
